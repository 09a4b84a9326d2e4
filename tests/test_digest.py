"""Digest selection, ranking and the reply a channel sees; the `digest` command and CLI.

Selection runs on a real SQLite file and on the real PostgreSQL server (`engine` fixture).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot import cli, digest
from bot.config import Settings
from bot.messages import ChannelRef, Invocation, ReplyKind, UserRef
from bot.models import Channel, SourceState
from bot.runtime import open_store
from bot.service import BotService
from bot.store import PaperStore
from tests.fakes import paper, setup_channel

SLOT = datetime(2026, 6, 17, 9, 0, tzinfo=UTC)  # a Wednesday
LAST = SLOT - timedelta(days=1)
KEY = "slack:T1:C1"
USER = UserRef("slack", "U1")


def plan(topics: tuple[str, ...], *, since: datetime = LAST, **kw: Any) -> digest.Plan:
    return digest.Plan(KEY, topics, since, **kw)


def ids(selection: digest.Selection) -> list[str]:
    return [p.paper.id for p in selection.picks]


def test_candidates_are_new_matching_and_undelivered(engine: Engine) -> None:
    store = PaperStore(engine)
    old = paper(
        "2606.00009",
        "DPO from last week",
        abstract="We study Direct Preference Optimization (DPO) again.",
    )
    store.upsert_many([old], LAST - timedelta(days=6))
    store.upsert_many(
        [
            paper("2606.00001", "Direct preference optimization at scale"),
            paper("2606.00002", "RLHF without reward models"),
            paper("2606.00003", "DPO versus RLHF: a comparison"),
            paper("2606.00004", "Protein folding with transformers"),
            paper("2606.00005", "DPO for code models"),
        ],
        LAST + timedelta(hours=3),
    )
    got = digest.select_one(store, plan(("dpo", "rlhf")), SLOT, delivered={"2606.00005"})
    assert sorted(ids(got)) == ["2606.00001", "2606.00002", "2606.00003"]
    by_id = {p.paper.id: p for p in got.picks}
    assert by_id["2606.00003"].topics == ("dpo", "rlhf")  # once, with both topics
    assert by_id["2606.00002"].topics == ("rlhf",)
    # The acronym finds the spelled-out title (aliases mined from the store).
    assert by_id["2606.00001"].topics == ("dpo",)


def test_ranked_by_relevance_then_upvotes_then_recency(engine: Engine) -> None:
    store = PaperStore(engine)
    t = LAST + timedelta(hours=1)
    store.upsert_many(
        [
            paper(
                "2606.00001",
                "Sparse attention kernels",
                upvotes=50,
                abstract="We also touch on diffusion briefly.",
            ),
            paper("2606.00002", "Diffusion models for audio", upvotes=3),
            paper("2606.00003", "Diffusion models for video", upvotes=30),
            paper(
                "2606.00004",
                "Diffusion models for text",
                upvotes=30,
                published_at=datetime(2026, 6, 16, tzinfo=UTC),
            ),
            paper(
                "2606.00005",
                "Diffusion models for text",
                upvotes=30,
                published_at=datetime(2026, 6, 15, tzinfo=UTC),
            ),
        ],
        t,
    )
    got = ids(digest.select_one(store, plan(("diffusion",)), SLOT))
    # Title matches beat an abstract mention with more upvotes; among equally relevant
    # titles, upvotes and then recency decide.
    assert got[-1] == "2606.00001"
    assert got.index("2606.00004") < got.index("2606.00005")
    assert got.index("2606.00003") < got.index("2606.00002")


def test_min_upvotes_and_the_cap_with_more(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many(
        [paper(f"2606.{i:05d}", f"Reward model study number {i}", upvotes=i) for i in range(1, 16)],
        LAST + timedelta(hours=2),
    )
    capped = digest.select_one(store, plan(("reward",), max_papers=10), SLOT)
    assert len(capped.picks) == 10 and capped.more == 5
    assert ids(capped)[0] == "2606.00015"  # same relevance: most upvoted first
    filtered = digest.select_one(store, plan(("reward",), min_upvotes=12), SLOT)
    assert sorted(ids(filtered)) == ["2606.00012", "2606.00013", "2606.00014", "2606.00015"]
    assert filtered.more == 0
    channel = _channel(store)
    reply = digest.digest_reply(channel, capped, SLOT, topics=("reward",))
    assert reply is not None and reply.more == 5 and "+5 more" in reply.plain_text()
    assert reply.title.startswith("15 new papers on your topics since")


def test_hf_top_follows_the_daily_list_by_upvotes(engine: Engine) -> None:
    store = PaperStore(engine)
    # Known for a month (from arXiv), on today's Daily Papers list now: it counts.
    known = paper("2605.00001", "An older paper", upvotes=90)
    store.upsert_many([known], LAST - timedelta(days=30))
    store.upsert_many(
        [paper("2605.00001", "An older paper", upvotes=90, hf_daily_date=SLOT.date())],
        SLOT - timedelta(hours=1),
    )
    store.upsert_many(
        [
            paper("2606.00001", "Trending one", upvotes=10, hf_daily_date=SLOT.date()),
            paper("2606.00002", "Trending two", upvotes=50, hf_daily_date=SLOT.date()),
            paper("2606.00003", "Not on the list", upvotes=99),
            paper("2605.00009", "Last week's list", upvotes=70, hf_daily_date=date(2026, 6, 10)),
        ],
        LAST + timedelta(hours=1),
    )
    got = digest.select_one(store, plan((digest.HF_TOP,)), SLOT)
    assert ids(got) == ["2605.00001", "2606.00002", "2606.00001"]
    assert got.picks[0].topics == (digest.HF_TOP_LABEL,)


def test_an_empty_digest_is_one_line_naming_the_sources(engine: Engine) -> None:
    store = PaperStore(engine)
    channel = _channel(store)
    # Friday 21:00 New York to Sunday noon: arXiv announced nothing.
    since = datetime(2026, 6, 20, 1, 0, tzinfo=UTC)
    now = datetime(2026, 6, 21, 16, 0, tzinfo=UTC)
    failing = SourceState(
        source="hf",
        consecutive_failures=3,
        last_error="HTTP 503",
        last_success_at=datetime(2026, 6, 20, 6, 0, tzinfo=UTC),
    )
    reply = digest.digest_reply(
        channel, digest.Selection(KEY, since), now, [failing], topics=("dpo",)
    )
    assert reply is not None and reply.kind is ReplyKind.DIGEST
    assert "\n" not in reply.plain_text()
    assert reply.title.startswith("No new papers on dpo since")
    assert "Hugging Face is failing (3x: HTTP 503" in reply.title
    assert "arXiv announced no new papers" in reply.title
    weekday = digest.digest_reply(channel, digest.Selection(KEY, LAST), SLOT, [], topics=("dpo",))
    assert weekday is not None and "arXiv" not in weekday.title
    quiet = channel.model_copy(update={"quiet": True})
    assert digest.digest_reply(quiet, digest.Selection(KEY, since), now, topics=("dpo",)) is None


def test_windows_first_digest_one_period_later_ones_since_the_last(engine: Engine) -> None:
    store = PaperStore(engine)
    setup_channel(store, KEY, ["dpo"], SLOT - timedelta(minutes=5), schedule="daily")
    channel = store.channel(KEY)
    assert channel is not None
    assert digest.window_start(channel, SLOT) == SLOT - timedelta(days=1)
    weekly = channel.model_copy(update={"schedule": "weekly:wed"})
    assert digest.window_start(weekly, SLOT) == SLOT - timedelta(days=7)
    later = channel.model_copy(update={"last_digest_at": SLOT - timedelta(days=3)})
    assert digest.window_start(later, SLOT) == SLOT - timedelta(days=3)
    # Digests off for months: the next one covers two weeks, not months.
    dormant = channel.model_copy(update={"last_digest_at": SLOT - timedelta(days=120)})
    assert digest.window_start(dormant, SLOT) == SLOT - digest.MAX_WINDOW


# ------------------------------------------------------------------------ commands


async def test_digest_command_preview_quiet_and_hf_top(engine: Engine) -> None:
    store = PaperStore(engine)
    clock = [SLOT + timedelta(hours=2)]
    svc = BotService(Settings(), store, clock=lambda: clock[0])
    here = ChannelRef.parse(KEY)

    async def say(text: str, manage: bool = True) -> str:
        reply = await svc.ask(Invocation(text, here, USER, can_manage=manage))
        return reply.plain_text()

    assert "follows no topics" in await say("digest")
    first = await say("subscribe --hf-top")
    assert "Subscribed this channel to the top of each day's Hugging Face" in first
    assert "Digests come" in first
    assert "--hf-top (Hugging Face top papers)" in await say("list")
    store.upsert_many(
        [paper("2606.00001", "Trending", upvotes=10, hf_daily_date=SLOT.date())],
        SLOT + timedelta(hours=1),
    )
    preview = await say("digest")
    assert preview.startswith("Preview: 1 new paper on your topics")
    assert "topics: Hugging Face top papers" in preview and "Next digest:" in preview
    assert svc.ledger.counts() == {}  # nothing recorded as delivered
    assert "Quiet mode on" in await say("digest quiet on")
    assert "Quiet on:" in await say("list")
    assert "Only people who can manage" in await say("digest quiet off", manage=False)
    assert "not something I can do" in await say("digest now please")
    assert "`post` posts it now" in await say("help")
    assert "follows no topics" not in await say("unsubscribe --hf-top")


def test_demo_shows_a_digest_of_the_demo_papers(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["demo", "--run", "/papers subscribe dpo", "--run", "/papers digest"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Preview:" in out and "new papers on your topics" in out
    assert "topics: dpo" in out


def _channel(store: PaperStore) -> Channel:
    channel, _ = store.ensure_channel(KEY, LAST)
    return channel


def test_cli_digest_dry_run_then_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    settings = Settings.load(None, {"PAPERBOY_DATA_DIR": str(tmp_path / "data")})
    store = open_store(settings)
    key = "console:local:terminal"
    now = datetime.now(UTC)
    setup_channel(store, key, ["dpo"], now - timedelta(hours=1))
    store.upsert_many([paper("2606.00001", "DPO for everyone")], now - timedelta(minutes=5))
    assert store.index is not None
    store.index.close()  # one index writer per data directory: the CLI opens its own
    store.engine.dispose()

    assert cli.main(["digest", "--channel", key, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Preview: 1 new paper" in out and "DPO for everyone" in out
    assert cli.main(["digest", "--channel", key]) == 0
    out = capsys.readouterr().out
    assert f"[{key}]" in out and "DPO for everyone" in out  # the post itself
    assert "Posted this channel's digest (1 paper)" in out
    assert cli.main(["digest", "--channel", key, "--dry-run"]) == 0
    assert "No new papers on dpo" in capsys.readouterr().out  # delivered: never again
    assert cli.main(["digest", "--channel", "not-a-key"]) == 2


# ------------------------------------------------------------------ imports and "new"


def _snapshot_line(pid: str, title: str, created: str) -> str:
    """One Kaggle-snapshot line (the format `paperboy import` reads)."""
    return json.dumps(
        {
            "id": pid,
            "authors": "A. Author",
            "title": title,
            "categories": "cs.LG",
            "abstract": "We study learning.",
            "versions": [{"version": "v1", "created": created}],
            "update_date": "2026-01-01",
            "authors_parsed": [["Author", "A.", ""]],
        }
    )


async def test_an_import_of_old_papers_does_not_flood_the_next_digest(
    engine: Engine, tmp_path: Path
) -> None:
    from bot.ports import Outbox
    from bot.sources.snapshot import import_snapshot
    from tests.fakes import FakeAdapter

    store = PaperStore(engine)
    setup_channel(store, KEY, ["learning"], LAST - timedelta(hours=1))
    # The day before the slot the bot's refresh stored one paper off today's Daily Papers.
    store.upsert_many(
        [paper("2606.00001", "Learning from the daily list", hf_daily_date=LAST.date())],
        LAST + timedelta(hours=2),
    )
    # Then an operator imports a snapshot: 300 papers from months ago; one submitted Tuesday
    # noon New York time (announced Tuesday 20:00, inside the window); one announced Monday
    # evening, before the window, that the previous digest never saw (the store did not have
    # it yet): it must not fall between the two windows.
    lines = [
        _snapshot_line(f"2601.{n:05d}", f"Learning old thing {n}", "Mon, 5 Jan 2026 10:00:00 GMT")
        for n in range(300)
    ]
    lines.append(
        _snapshot_line("2606.00777", "Learning announced Tuesday", "Tue, 16 Jun 2026 16:00:00 GMT")
    )
    lines.append(
        _snapshot_line("2606.00666", "Learning announced Monday", "Mon, 15 Jun 2026 16:00:00 GMT")
    )
    snapshot = tmp_path / "arxiv-metadata-oai-snapshot.json"
    snapshot.write_text("\n".join(lines) + "\n")
    report = import_snapshot(store, snapshot, LAST + timedelta(hours=3), chunk=50)
    assert report.added == 302
    assert digest.arxiv_announced(LAST, SLOT)  # the window did have an announcement

    svc = BotService(Settings(), store, clock=lambda: SLOT + timedelta(seconds=30))
    adapter = FakeAdapter()
    await svc.deliver_due(Outbox({"slack": adapter}), SLOT + timedelta(seconds=30))
    [post] = adapter.delivered
    assert sorted(c.id for c in post.reply.cards) == ["2606.00001", "2606.00666", "2606.00777"]
    assert post.reply.title.startswith("3 new papers on your topics")
    # The old papers are searchable all the same.
    hits = await svc.ask(Invocation("learning old thing 42", ChannelRef.parse(KEY), USER))
    assert "2601.00042" in hits.plain_text()


@pytest.mark.parametrize(
    ("submitted", "announced"),
    [
        ("2026-06-16T12:00:00-04:00", "2026-06-16T20:00:00-04:00"),  # Tue before 14:00
        ("2026-06-16T14:30:00-04:00", "2026-06-17T20:00:00-04:00"),  # after: Wednesday
        ("2026-06-18T15:00:00-04:00", "2026-06-21T20:00:00-04:00"),  # Thu late: Sunday
        ("2026-06-19T15:00:00-04:00", "2026-06-22T20:00:00-04:00"),  # Fri late: Monday
        ("2026-06-20T09:00:00-04:00", "2026-06-22T20:00:00-04:00"),  # Saturday: Monday
    ],
)
def test_each_submission_has_one_arxiv_announcement(submitted: str, announced: str) -> None:
    from bot.announce import arxiv_announcement

    moment = arxiv_announcement(datetime.fromisoformat(submitted))
    assert moment == datetime.fromisoformat(announced)
    assert digest.arxiv_announced(moment - timedelta(seconds=1), moment)


async def test_a_refresh_that_commits_after_the_slot_reaches_the_next_digest(
    engine: Engine,
) -> None:
    from bot.ports import Outbox
    from tests.fakes import FakeAdapter

    store = PaperStore(engine)
    setup_channel(store, KEY, ["learning"], LAST - timedelta(hours=1))
    store.upsert_many([paper("2606.00001", "Learning early")], LAST + timedelta(hours=2))
    svc = BotService(Settings(), store, clock=lambda: SLOT)
    adapter = FakeAdapter()
    outbox = Outbox({"slack": adapter})
    await svc.deliver_due(outbox, SLOT + timedelta(seconds=30))
    # A refresh that started a minute before the slot (its papers stamped then) commits only
    # now, after that digest was built.
    store.upsert_many([paper("2606.00002", "Learning late")], SLOT - timedelta(minutes=1))
    await svc.deliver_due(outbox, SLOT + timedelta(days=1, seconds=30))
    posted = [[c.id for c in p.reply.cards] for p in adapter.delivered]
    assert posted == [["2606.00001"], ["2606.00002"]]  # each once, none lost between windows


def test_selection_loads_a_few_papers_per_topic_not_the_window(
    store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 400 matching papers announced in the window (a big day), 20 with the topic in the
    # title: the digest shows the 5 best and says "+395 more", having loaded a few times
    # its cap from the store, not the window.
    store.upsert_many(
        [
            paper(
                f"2606.{i:05d}",
                f"Learning study {i}" if i % 20 == 0 else f"Study {i}",
                abstract="A study." if i % 20 == 0 else "A study of learning.",
                upvotes=i % 7,
            )
            for i in range(400)
        ],
        LAST + timedelta(hours=2),
    )
    loaded: list[int] = []
    get_many = store.get_many

    def counting(ids: list[str]) -> list[object]:
        loaded.append(len(ids))
        return get_many(ids)  # type: ignore[return-value]

    monkeypatch.setattr(store, "get_many", counting)
    got = digest.select_one(store, plan(("learning",), max_papers=5), SLOT)
    assert len(got.picks) == 5 and got.more == 395
    assert sum(loaded) <= 40
    assert all(p.paper.title.startswith("Learning study") for p in got.picks)
    # Exact despite the cut: equally relevant papers are ordered by upvotes over all of them.
    best = sorted((i % 7 for i in range(0, 400, 20)), reverse=True)
    assert [p.paper.upvotes for p in got.picks] == best[:5]


def test_ties_at_the_cut_look_deeper(store: PaperStore) -> None:
    store.upsert_many(
        [paper(f"2606.{i:05d}", f"Learning study {i}", upvotes=i % 50) for i in range(300)],
        LAST + timedelta(hours=2),
    )
    got = digest.select_one(store, plan(("learning",), max_papers=5), SLOT)
    assert [p.paper.upvotes for p in got.picks] == [49] * 5  # the most upvoted of all 300
