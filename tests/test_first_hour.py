"""What a new user sees in the first hour: an empty store, no network, typos, plain words."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot import paper_commands
from bot.config import Settings
from bot.db import make_engine
from bot.index import PaperIndex
from bot.messages import ChannelRef, Invocation, Reply, UserRef
from bot.models import PaperIn
from bot.ports import PaperLookup
from bot.service import BotService
from bot.store import PaperStore
from tests.conftest import NOW
from tests.fakes import paper

CHAN = ChannelRef("slack", "T1", "C1")


def make_service(
    tmp_path: Path, papers: list[PaperIn], remote: PaperLookup | None = None
) -> BotService:
    store = PaperStore(
        make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), PaperIndex(tmp_path / "index")
    )
    if papers:
        store.upsert_many(papers, NOW - timedelta(hours=1))
    return BotService(Settings.load(None, {}), store, clock=lambda: NOW, remote=remote)


async def ask(service: BotService, text: str) -> Reply:
    return await service.ask(Invocation(text, CHAN, UserRef("slack", "U1")))


class SilentRemote:
    """A remote source that never answers (offline with a black-holed route)."""

    def __init__(self) -> None:
        self.calls = 0

    async def lookup_paper(self, paper_id: str) -> PaperIn | None:
        self.calls += 1
        await asyncio.sleep(3600)
        return None

    async def search_remote(self, query: str, limit: int) -> list[PaperIn]:
        self.calls += 1
        await asyncio.sleep(3600)
        return []


DPO = paper(
    "2305.18290",
    "Direct Preference Optimization",
    "DPO.",
    upvotes=0,
    hf_daily_date=NOW.date(),
    published_at=NOW - timedelta(days=1),
)


async def test_an_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    service = make_service(tmp_path, [])
    for text in ("dpo", "top", "status"):
        reply = await ask(service, text)
        shown = f"{reply.title}\n{reply.text}"
        assert "store is empty: run `paperboy fetch`" in shown, (text, shown)
        assert "No papers match" not in shown


async def test_a_remote_source_that_does_not_answer_costs_about_two_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paper_commands, "REMOTE_BUDGET", 0.2)  # the 2 s budget, scaled down
    remote = SilentRemote()
    service = make_service(tmp_path, [DPO], remote)
    search = await asyncio.wait_for(ask(service, "walrus"), 5)
    assert "did not answer" in search.text
    lookup = await asyncio.wait_for(ask(service, "2501.99999"), 5)
    assert lookup.is_error and "did not answer" in lookup.text
    assert "arxiv.org/abs/2501.99999" in lookup.text
    assert remote.calls == 2


async def test_top_today_never_lists_a_paper_nobody_upvoted(tmp_path: Path) -> None:
    service = make_service(tmp_path, [DPO])
    reply = await ask(service, "top")
    assert reply.title != "Top papers today"
    assert not reply.cards


async def test_a_command_typo_is_pointed_out(tmp_path: Path) -> None:
    service = make_service(tmp_path, [DPO])
    reply = await ask(service, "lsit")
    assert "Did you mean `/papers list`?" in reply.text
    assert "Did you mean" not in (await ask(service, "dpo")).text


@pytest.mark.parametrize("text", ["dpo OR", "OR dpo", '"preference optimization', "(dpo OR kto"])
async def test_search_footer_never_suggests_a_broken_topic(tmp_path: Path, text: str) -> None:
    service = make_service(tmp_path, [DPO])
    reply = await ask(service, text)
    assert reply.cards, reply
    assert "/papers subscribe" not in reply.footer


async def test_search_footer_suggests_a_clean_topic(tmp_path: Path) -> None:
    service = make_service(tmp_path, [DPO])
    reply = await ask(service, "dpo OR kto")
    assert "`/papers subscribe dpo OR kto`" in reply.footer


async def test_subscribing_to_the_hf_top_reads_as_words(tmp_path: Path) -> None:
    service = make_service(tmp_path, [DPO])
    reply = await ask(service, "subscribe --hf-top")
    assert "--hf-top" not in reply.title
    assert "Hugging Face" in reply.title


async def test_status_shows_no_exception_text_and_names_the_channel(tmp_path: Path) -> None:
    service = make_service(tmp_path, [DPO])
    service.store.record_source_failure(
        "hf", NOW, "hf: connection failed (ConnectError: [Errno -2] Name or service not known)"
    )
    service.store.record_source_failure(
        "arxiv", NOW, "arxiv: cannot reach export.arxiv.org (DNS): are you offline?"
    )
    reply = await ask(service, "status")
    assert "Errno" not in reply.text
    assert "cannot reach export.arxiv.org (DNS): are you offline?" in reply.text
    assert "This channel: slack:T1:C1" in reply.text


async def test_search_footer_does_not_promise_a_daily_digest(tmp_path: Path) -> None:
    # A channel may get digests on weekdays, weekly or never: the footer names no schedule.
    service = make_service(tmp_path, [DPO])
    reply = await ask(service, "dpo")
    assert "daily" not in reply.footer and "this channel's digest" in reply.footer
