"""Every /papers command through BotService.handle, as a user in a channel sees it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.commands import COMMANDS, build_text, help_text, parse_text
from bot.config import Settings
from bot.db import make_engine
from bot.errors import SourceError
from bot.index import PaperIndex
from bot.messages import ChannelRef, Invocation, Pending, Reply, ReplyKind, UserRef
from bot.models import PaperIn
from bot.service import BotService
from bot.store import PaperStore
from tests.conftest import NOW
from tests.fakes import paper

CHAN = ChannelRef("slack", "T1", "C1")
OTHER = ChannelRef("slack", "T1", "C2")
OTHER_TEAM = ChannelRef("slack", "T2", "C1")



PAPERS = [
    paper(
        "2305.18290",
        "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
        "We introduce Direct Preference Optimization (DPO), a stable alternative to RLHF.",
        authors=["Rafael Rafailov", "Archit Sharma"],
        upvotes=120,
        hf_daily_date=NOW.date(),
        published_at=NOW - timedelta(days=1),
        categories=["cs.LG"],
    ),
    paper(
        "2401.00001",
        "Preference tuning without reinforcement learning",
        "We study direct preference optimization for small models.",
        authors=["Ada Lovelace"],
        upvotes=5,
        hf_daily_date=NOW.date() - timedelta(days=3),
        published_at=NOW - timedelta(days=3),
    ),
    paper(
        "2402.00002",
        "Diffusion models for protein design",
        "A diffusion model that designs proteins.",
        authors=["Grace Hopper"],
        upvotes=40,
        hf_daily_date=NOW.date() - timedelta(days=20),
        published_at=NOW - timedelta(days=20),
        categories=["q-bio.BM"],
    ),
    paper("hep-th/9901001", "Strings on a lattice", "Old-style identifiers still work."),
]


class FakeRemote:
    """Remote sources that answer from a dict, or fail."""

    def __init__(self, papers: dict[str, PaperIn] | None = None, fail: bool = False) -> None:
        self.papers = papers or {}
        self.fail = fail
        self.lookups: list[str] = []

    async def lookup_paper(self, paper_id: str) -> PaperIn | None:
        self.lookups.append(paper_id)
        if self.fail:
            raise SourceError("Hugging Face answered 503")
        return self.papers.get(paper_id)

    async def search_remote(self, query: str, limit: int) -> list[PaperIn]:
        if self.fail:
            raise SourceError("Hugging Face answered 503")
        return [p for p in self.papers.values() if query.lower() in p.title.lower()][:limit]


@pytest.fixture
def service(tmp_path: Path) -> BotService:
    store = PaperStore(
        make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), PaperIndex(tmp_path / "index")
    )
    store.upsert_many(PAPERS, NOW - timedelta(hours=1))
    return BotService(Settings.load(None, {}), store, clock=lambda: NOW)


async def ask(service: BotService, text: str, channel: ChannelRef = CHAN, **kw: object):  # type: ignore[no-untyped-def]
    return await service.ask(Invocation(text, channel, UserRef("slack", "U1"), **kw))  # type: ignore[arg-type]


def test_text_grammar() -> None:
    assert parse_text("subscribe dpo") == ("subscribe", "dpo")
    assert parse_text("  SUBSCRIBE   dpo  rlhf ") == ("subscribe", "dpo rlhf")
    assert parse_text("dpo") == ("search", "dpo")
    assert parse_text("search list") == ("search", "list")
    assert parse_text("2305.18290v2") == ("paper", "2305.18290v2")
    assert parse_text("https://arxiv.org/abs/2305.18290") == (
        "paper",
        "https://arxiv.org/abs/2305.18290",
    )
    assert parse_text("") == ("help", "")
    assert parse_text("top week") == ("top", "week")


def test_build_text_round_trips_typed_options() -> None:
    assert build_text("search", {"query": "dpo"}) == "search dpo"
    assert parse_text(build_text("search", {"query": "list"})) == ("search", "list")
    text = build_text("schedule", {"kind": "weekly", "day": "mon", "time": "08:30"})
    assert parse_text(text) == ("schedule", "weekly mon 08:30")
    assert parse_text(build_text("paper", {"id": "2305.18290"})) == ("paper", "2305.18290")


@pytest.mark.parametrize(
    "spec_name,example",
    [(spec.name, example) for spec in COMMANDS.values() for example in spec.examples],
)
async def test_every_example_in_help_is_answered(
    service: BotService, spec_name: str, example: str
) -> None:
    name, _ = parse_text(example)
    assert name == spec_name
    reply = await ask(service, example)
    assert reply.title
    assert "went wrong" not in reply.title


async def test_search_finds_dpo_papers_first_including_spelled_out(service: BotService) -> None:
    reply = await ask(service, "dpo")
    assert reply.kind is ReplyKind.RESULTS
    ids = [c.id for c in reply.cards]
    assert ids[:2] == ["2305.18290", "2401.00001"] or set(ids[:2]) == {"2305.18290", "2401.00001"}
    assert "2402.00002" not in ids
    assert reply.ephemeral
    assert "subscribe dpo" in reply.footer


async def test_search_with_no_match_says_so(service: BotService) -> None:
    reply = await ask(service, "quantum chromodynamics")
    assert not reply.cards
    assert "No papers match" in reply.title


async def test_search_says_when_it_adds_papers_matching_some_words(service: BotService) -> None:
    reply = await ask(service, "diffusion proteins lattice")  # no paper has all three
    assert [c.id for c in reply.cards] == ["2402.00002"]
    assert "no paper matches all your words" in reply.footer
    reply = await ask(service, "preference optimization reward")
    assert [c.id for c in reply.cards][0] == "2305.18290"  # all three words: first
    assert "also papers matching some of your words (the last 1)" in reply.footer
    reply = await ask(service, "dpo")
    assert "some of your words" not in reply.footer


async def test_bad_query_gets_a_clear_error(service: BotService) -> None:
    reply = await ask(service, "dpo since:someday")
    assert reply.kind is ReplyKind.ERROR
    assert "since" in (reply.title + reply.text).lower()


async def test_paper_lookup_by_id_and_urls(service: BotService) -> None:
    for text in (
        "2305.18290",
        "2305.18290v3",
        "https://huggingface.co/papers/2305.18290",
        "arxiv.org/pdf/2305.18290v1.pdf",
        "hep-th/9901001v2",
    ):
        reply = await ask(service, text)
        assert reply.kind is ReplyKind.PAPER, text
    reply = await ask(service, "https://arxiv.org/abs/2305.18290")
    assert reply.cards[0].title.startswith("Direct Preference Optimization")
    assert reply.cards[0].upvotes == 120


async def test_unknown_paper_without_remote_says_not_in_store(service: BotService) -> None:
    reply = await ask(service, "2501.99999")
    assert reply.kind is ReplyKind.ERROR
    assert "2501.99999" in reply.title


async def test_unknown_paper_is_fetched_stored_and_shown(service: BotService) -> None:
    service.remote = FakeRemote({"2501.99999": paper("2501.99999", "A fetched paper")})
    inv = Invocation("2501.99999", CHAN, UserRef("slack", "U1"))
    pending = await service.handle(inv)
    assert isinstance(pending, Pending) and service.remote.lookups == []  # type: ignore[attr-defined]
    assert pending.ephemeral is False  # a paper in detail is shown to the channel
    reply = await pending.reply()
    assert reply.kind is ReplyKind.PAPER and reply.cards[0].title == "A fetched paper"
    assert service.store.get("2501.99999") is not None
    stored = await service.handle(inv)  # stored now: answered at once
    assert isinstance(stored, Reply) and stored.cards[0].title == "A fetched paper"


async def test_search_with_too_few_local_hits_asks_the_remote_sources(service: BotService) -> None:
    service.remote = FakeRemote({"2501.88888": paper("2501.88888", "Walrus tuning at scale")})
    inv = Invocation("walrus", CHAN, UserRef("slack", "U1"))
    pending = await service.handle(inv)
    assert isinstance(pending, Pending) and pending.ephemeral is True
    reply = await pending.reply()
    assert [c.id for c in reply.cards] == ["2501.88888"]
    # A search the store answers in full never waits for the network.
    many = Invocation("preference", CHAN, UserRef("slack", "U1"))
    service.settings.search.results = 2
    assert isinstance(await service.handle(many), Reply)


async def test_failing_remote_lookup_is_explained(service: BotService) -> None:
    service.remote = FakeRemote(fail=True)
    reply = await ask(service, "2501.99999")
    assert reply.kind is ReplyKind.ERROR and "failed" in reply.title
    assert service.store.count() == len(PAPERS)


async def test_top_periods(service: BotService) -> None:
    day = await ask(service, "top")
    assert [c.id for c in day.cards] == ["2305.18290"]
    week = await ask(service, "top week")
    assert [c.id for c in week.cards] == ["2305.18290", "2401.00001"]
    month = await ask(service, "top month")
    assert [c.id for c in month.cards] == ["2305.18290", "2402.00002", "2401.00001"]
    bad = await ask(service, "top year")
    assert bad.kind is ReplyKind.ERROR and "day|week|month" in bad.text


async def test_subscribe_list_unsubscribe_per_channel(service: BotService) -> None:
    first = await ask(service, "subscribe dpo")
    assert first.kind is ReplyKind.INFO and not first.ephemeral
    assert "schedule" in first.text  # the first subscribe says how to change the schedule
    again = await ask(service, "subscribe  DPO")
    assert "already" in again.title
    await ask(service, 'subscribe "reward model" cat:cs.LG')
    await ask(service, "subscribe diffusion", channel=OTHER)

    listing = await ask(service, "list")
    assert "1. dpo" in listing.text and '2. "reward model" cat:cs.LG' in listing.text
    assert "diffusion" not in listing.text
    assert "Next digest" in listing.text

    other_team = await ask(service, "list", channel=OTHER_TEAM)
    assert "No topics" in other_team.text

    gone = await ask(service, "unsubscribe 1")
    assert "dpo" in gone.title
    missing = await ask(service, "unsubscribe dpo")
    assert missing.kind is ReplyKind.ERROR and '1. "reward model"' in missing.text
    by_text = await ask(service, 'unsubscribe "Reward  model" cat:cs.LG')
    assert by_text.kind is ReplyKind.INFO
    assert "No topics" in (await ask(service, "list")).text
    assert "diffusion" in (await ask(service, "list", channel=OTHER)).text


async def test_subscribe_rejects_empty_and_bad_topics(service: BotService) -> None:
    assert (await ask(service, "subscribe")).kind is ReplyKind.ERROR
    assert (await ask(service, "subscribe sort:sideways")).kind is ReplyKind.ERROR
    assert "No topics" in (await ask(service, "list")).text


async def test_schedule_validation_and_next_time(service: BotService) -> None:
    ok = await ask(service, "schedule daily 09:00 Europe/Berlin")
    assert ok.kind is ReplyKind.INFO
    assert "every day at 09:00 Europe/Berlin" in ok.title
    assert "Next digest" in ok.text
    weekly = await ask(service, "schedule weekly mon")
    assert "every Monday at 09:00 Europe/Berlin" in weekly.title
    for bad, hint in (
        ("schedule daily 25:00", "HH:MM"),
        ("schedule daily 09:00 Mars/Olympus", "IANA"),
        ("schedule fortnightly", "schedule daily 09:00"),
        ("schedule weekly 09:00", "day"),
    ):
        reply = await ask(service, bad)
        assert reply.kind is ReplyKind.ERROR, bad
        assert hint in reply.text, bad
    off = await ask(service, "schedule off")
    assert "off" in off.title
    channel = service.store.channel(CHAN.key)
    assert channel is not None and channel.schedule == "off"


async def test_managing_commands_need_permission(service: BotService) -> None:
    reply = await ask(service, "subscribe dpo", can_manage=False)
    assert reply.kind is ReplyKind.ERROR and "manage" in reply.title
    assert service.store.subscriptions(CHAN.key) == []
    assert (await ask(service, "dpo", can_manage=False)).kind is ReplyKind.RESULTS


async def test_help_lists_every_command(service: BotService) -> None:
    reply = await ask(service, "help")
    for spec in COMMANDS.values():
        assert spec.usage in reply.text
    assert reply.text == help_text()
    one = await ask(service, "help schedule")
    assert "schedule daily 09:00 Europe/Berlin" in one.text
    for reply in (await ask(service, "help"), await ask(service, "help search")):
        assert "acronyms work both ways" in reply.text
        assert "words stand together" in reply.text
        assert "papers that have most of them" in reply.text


async def test_status_reports_store_size(service: BotService) -> None:
    reply = await ask(service, "status")
    assert f"{len(PAPERS)} papers" in reply.text


async def test_internal_failure_becomes_a_polite_error(
    service: BotService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("database exploded")

    monkeypatch.setattr(service.store, "top", boom)
    reply = await ask(service, "top")
    assert reply.kind is ReplyKind.ERROR
    assert "exploded" not in reply.title + reply.text
