"""The delivery ledger, end to end: a paper reaches a channel once, whatever happens.

Every test runs on a real SQLite file and on the real PostgreSQL server (`engine` fixture),
through `BotService.deliver_due` and a recording fake adapter (tests/fakes.py).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.config import Settings
from bot.db import make_engine
from bot.ledger import STALE_AFTER, Ledger
from bot.messages import ChannelRef, Invocation, UserRef
from bot.models import Delivery, DigestRun
from bot.ports import Outbox
from bot.scheduler import Scheduler
from bot.service import BotService
from bot.store import PaperStore
from tests.fakes import (
    Clock,
    FakeAdapter,
    ambiguous,
    gone,
    paper,
    rate_limited,
    read_record,
    setup_channel,
)

DAY0 = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)  # a Monday
SLOT = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
CHAN = "slack:T1:C1"
OTHER = "slack:T1:C2"
FAKES = Path(__file__).with_name("fakes.py")


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def seed(store: PaperStore) -> None:
    """Two channels on a daily 09:00 UTC digest; dpo papers and others seen at 08:30."""
    setup_channel(store, CHAN, ["dpo"], DAY0)
    setup_channel(store, OTHER, ["dpo", "diffusion"], DAY0)
    store.upsert_many(
        [
            paper("2606.00001", "Direct preference optimization (DPO) revisited", upvotes=12),
            paper("2606.00002", "DPO for diffusion models", upvotes=3),
            paper("2606.00003", "Diffusion transformers at scale", upvotes=40),
            paper("2606.00004", "A survey of protein folding"),
        ],
        DAY0 + timedelta(minutes=30),
    )


def service(engine: Engine, clock: Clock, outbox: Outbox | None = None) -> BotService:
    return BotService(Settings(), PaperStore(engine), clock=clock, outbox=outbox)


def scheduler(svc: BotService, outbox: Outbox) -> Scheduler:
    """The scheduler `paperboy run` wires for this service (bot.runtime)."""
    return Scheduler(
        Settings(),
        catch_up=svc.store.sync_index,
        deliver=partial(svc.deliver_due, outbox),
        clock=svc.clock,
    )


def statuses(engine: Engine, channel: str = CHAN) -> dict[str, str]:
    return Ledger(engine).statuses(channel)


def runs(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(DigestRun)).scalar_one())


# ------------------------------------------------------------------------ claims


def test_claim_race_eight_threads_sqlite_one_wins(tmp_path: Path, now: datetime) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engines = [make_engine(url) for _ in range(8)]
    barrier = threading.Barrier(8)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker(engine: Engine) -> None:
        ledger = Ledger(engine)
        barrier.wait()
        try:
            results.append(ledger.claim(CHAN, "2401.00001", now))
        except BaseException as exc:  # "database is locked" must not escape
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]
    with Session(engines[0]) as session:
        assert session.execute(select(func.count()).select_from(Delivery)).scalar_one() == 1
    for e in engines:
        e.dispose()


@pytest.mark.postgres
def test_claim_race_two_processes_postgresql_one_wins(pg_engine: Engine) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    from tests.fakes import claim_worker

    procs = [
        ctx.Process(target=claim_worker, args=(url_of(pg_engine), barrier, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert got == [False, True]
    with Session(pg_engine) as session:
        assert session.execute(select(func.count()).select_from(Delivery)).scalar_one() == 1


# --------------------------------------------------------------------- the digest


async def test_a_due_digest_posts_each_matching_paper_once(engine: Engine) -> None:
    clock = Clock(DAY0)
    svc = service(engine, clock)
    seed(svc.store)
    adapter = FakeAdapter()
    outbox = Outbox({"slack": adapter})

    assert (await svc.deliver_due(outbox, SLOT - timedelta(minutes=1))).digests == 0
    report = await svc.deliver_due(outbox, SLOT + timedelta(seconds=30))
    assert report.digests == 2 and report.messages == 2
    assert sorted(adapter.papers_to(CHAN)) == ["2606.00001", "2606.00002"]
    assert sorted(adapter.papers_to(OTHER)) == ["2606.00001", "2606.00002", "2606.00003"]
    # The paper matching both of OTHER's topics is one entry listing both.
    post = next(p for p in adapter.delivered if p.channel == OTHER)
    both = next(c for c in post.reply.cards if c.id == "2606.00002")
    assert both.matched_topics == ("dpo", "diffusion")
    assert set(statuses(engine).values()) == {"sent"}

    # The same slot again (another tick, a restart): nothing more.
    again = await svc.deliver_due(outbox, SLOT + timedelta(minutes=1))
    assert again.messages == 0 and len(adapter.delivered) == 2

    # Next day, nothing new: one line says so, with the state of the sources.
    await svc.deliver_due(outbox, SLOT + timedelta(days=1, seconds=5))
    empty = [p for p in adapter.delivered if p.channel == CHAN][-1]
    assert empty.reply.cards == ()
    assert empty.reply.title.startswith("No new papers on dpo since")


async def test_quiet_channel_gets_no_empty_digest(engine: Engine) -> None:
    svc = service(engine, Clock(DAY0))
    setup_channel(svc.store, CHAN, ["nothing matches this"], DAY0, quiet=True)
    adapter = FakeAdapter()
    report = await svc.deliver_due(Outbox({"slack": adapter}), SLOT + timedelta(seconds=1))
    assert report.empty == 0 and adapter.attempts == []
    assert runs(engine) == 1  # the slot is still done: not rebuilt on the next tick


async def test_two_instances_each_with_a_scheduler_fire_the_same_slot(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(DAY0)
    seed(PaperStore(engine))
    clock.now = SLOT + timedelta(seconds=20)
    adapter = FakeAdapter()  # one workspace: both instances post into it
    outbox = Outbox({"slack": adapter})
    engines = [make_engine(url_of(engine)) for _ in range(2)]
    schedulers = [scheduler(service(e, clock), outbox) for e in engines]
    ran = [asyncio.Event() for _ in schedulers]
    for sched, event in zip(schedulers, ran, strict=True):
        sched.scheduler.add_listener(lambda _e, ev=event: ev.set(), EVENT_JOB_EXECUTED)
    try:
        for sched in schedulers:
            sched.start()
            assert sched.job_ids == ["digest-tick"]
        for sched in schedulers:
            sched.run_tick_now()
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ran)), 60)
    finally:
        for sched in schedulers:
            sched.stop()
        for e in engines:
            e.dispose()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    for channel, expected in ((CHAN, 2), (OTHER, 3)):
        counts = Counter(adapter.papers_to(channel))
        assert len(counts) == expected and set(counts.values()) == {1}
    assert len(adapter.delivered) == 2  # one digest per channel
    assert runs(engine) == 2


async def test_a_process_killed_while_posting_never_posts_twice(
    engine: Engine, tmp_path: Path
) -> None:
    store = PaperStore(engine)
    setup_channel(store, CHAN, ["dpo"], DAY0)
    store.upsert_many(
        [paper("2606.00001", "DPO one"), paper("2606.00002", "DPO two")],
        DAY0 + timedelta(minutes=30),
    )
    record = tmp_path / "posts.jsonl"
    crash_at = SLOT + timedelta(seconds=10)
    child = subprocess.run(
        [sys.executable, str(FAKES), "crash", url_of(engine), str(record), crash_at.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr  # SIGKILL, right after the post was written
    assert [r["papers"] for r in read_record(record)] == [["2606.00001", "2606.00002"]]
    assert set(statuses(engine).values()) == {"claimed"}

    # Restarted: the claims of the dead process are recognised; the post may exist: unknown.
    clock = Clock(crash_at + STALE_AFTER + timedelta(minutes=1))
    svc = service(engine, clock)
    adapter = FakeAdapter(record=record)
    outbox = Outbox({"slack": adapter})
    await svc.deliver_due(outbox)
    assert statuses(engine) == {"2606.00001": "unknown", "2606.00002": "unknown"}
    assert adapter.delivered == []

    # New papers; the next slot delivers only those.
    store.upsert_many([paper("2606.00003", "DPO three")], SLOT + timedelta(hours=3))
    clock.now = SLOT + timedelta(days=1, seconds=10)
    await svc.deliver_due(outbox)
    posted = Counter(pid for r in read_record(record) for pid in r["papers"])
    assert posted == {"2606.00001": 1, "2606.00002": 1, "2606.00003": 1}
    assert statuses(engine)["2606.00003"] == "sent"


async def test_429_is_retried_after_the_wait_and_ends_as_one_message(engine: Engine) -> None:
    svc = service(engine, Clock(DAY0))
    seed(svc.store)
    adapter = FakeAdapter()
    adapter.fail_next(rate_limited(30))
    outbox = Outbox({"slack": adapter})
    first = SLOT + timedelta(seconds=5)

    # Only CHAN's post is rejected (posts go out concurrently: find out which one it was).
    await svc.deliver_due(outbox, first)
    rejected = next(p for p in adapter.attempts if p not in adapter.delivered)
    assert set(statuses(engine, rejected.channel).values()) == {"failed"}

    await svc.deliver_due(outbox, first + timedelta(seconds=20))  # still waiting
    assert len(adapter.attempts) == 2  # nothing re-posted before the wait is over

    report = await svc.deliver_due(outbox, first + timedelta(seconds=31))
    assert report.retried == 1 and report.messages == 1
    posts = [p for p in adapter.delivered if p.channel == rejected.channel]
    assert len(posts) == 1  # one message in the end
    assert sorted(posts[0].paper_ids) == sorted(rejected.paper_ids)
    assert posts[0].idempotency_key == rejected.idempotency_key
    assert set(statuses(engine, rejected.channel).values()) == {"sent"}
    assert Counter(adapter.papers_to(rejected.channel)).most_common(1)[0][1] == 1


async def test_an_ambiguous_post_is_unknown_and_never_reposted(engine: Engine) -> None:
    svc = service(engine, Clock(DAY0))
    setup_channel(svc.store, CHAN, ["dpo"], DAY0)
    svc.store.upsert_many([paper("2606.00001", "DPO one")], DAY0)
    adapter = FakeAdapter()
    adapter.fail_next(ambiguous())
    outbox = Outbox({"slack": adapter})
    report = await svc.deliver_due(outbox, SLOT + timedelta(seconds=5))
    assert report.unknown == 1
    assert statuses(engine) == {"2606.00001": "unknown"}
    for hours in (1, 25, 49):
        await svc.deliver_due(outbox, SLOT + timedelta(hours=hours))
    assert adapter.papers_to(CHAN) == ["2606.00001"]  # the one ambiguous post, nothing more


async def test_gone_pauses_the_channel_and_says_so(engine: Engine) -> None:
    clock = Clock(DAY0)
    svc = service(engine, clock)
    setup_channel(svc.store, CHAN, ["dpo"], DAY0)
    svc.store.upsert_many([paper("2606.00001", "DPO one")], DAY0)
    adapter = FakeAdapter()
    adapter.fail_next(gone())
    outbox = Outbox({"slack": adapter})
    report = await svc.deliver_due(outbox, SLOT + timedelta(seconds=5))
    assert report.paused == [CHAN]
    assert adapter.delivered == []
    assert statuses(engine) == {"2606.00001": "failed"}

    clock.now = SLOT + timedelta(hours=2)
    inv = Invocation("status", ChannelRef.parse(CHAN), UserRef("slack", "U1"))
    assert "paused" in (await svc.ask(inv)).text
    listing = await svc.ask(Invocation("list", ChannelRef.parse(CHAN), UserRef("slack", "U1")))
    assert "Digests are paused" in listing.text and "channel_not_found" in listing.text

    await svc.deliver_due(outbox, SLOT + timedelta(days=1, seconds=5))
    assert len(adapter.attempts) == 1  # a paused channel is not posted to

    # A manager sets a schedule again: digests resume.
    await svc.ask(
        Invocation("schedule daily 09:00", ChannelRef.parse(CHAN), UserRef("slack", "U1"))
    )
    svc.store.upsert_many([paper("2606.00002", "DPO two")], SLOT + timedelta(days=1, hours=1))
    await svc.deliver_due(outbox, SLOT + timedelta(days=2, seconds=5))
    assert adapter.papers_to(CHAN) == ["2606.00002"]


async def test_three_days_of_downtime_give_one_catch_up_digest(engine: Engine) -> None:
    svc = service(engine, Clock(DAY0))
    setup_channel(svc.store, CHAN, ["dpo"], DAY0)
    adapter = FakeAdapter()
    outbox = Outbox({"slack": adapter})
    svc.store.upsert_many([paper("2606.00001", "DPO zero")], DAY0)
    await svc.deliver_due(outbox, SLOT + timedelta(seconds=5))
    assert adapter.papers_to(CHAN) == ["2606.00001"]
    # Down from here for three days; papers keep arriving (another instance fetched them).
    for day in (1, 2, 3):
        svc.store.upsert_many(
            [paper(f"2606.0001{day}", f"DPO day {day}")], SLOT + timedelta(days=day, hours=-3)
        )
    back = SLOT + timedelta(days=3, hours=2)
    for minutes in (0, 1, 2):  # the first ticks after the restart
        await svc.deliver_due(outbox, back + timedelta(minutes=minutes))
    assert len(adapter.delivered) == 2  # the first digest and ONE catch-up
    assert sorted(adapter.delivered[1].paper_ids) == ["2606.00011", "2606.00012", "2606.00013"]
    assert runs(engine) == 2
    channel = svc.store.channel(CHAN)
    assert channel is not None and channel.next_digest_at is not None
    assert channel.next_digest_at.replace(tzinfo=UTC) == SLOT + timedelta(days=4)


async def test_digest_post_goes_through_the_ledger(engine: Engine) -> None:
    clock = Clock(DAY0)
    adapter = FakeAdapter()
    outbox = Outbox({"slack": adapter})
    svc = service(engine, clock, outbox)
    setup_channel(svc.store, CHAN, ["dpo"], DAY0)
    svc.store.upsert_many([paper("2606.00001", "DPO one")], DAY0)
    user = UserRef("slack", "U1")
    clock.now = DAY0 + timedelta(minutes=10)
    preview = await svc.ask(Invocation("digest", ChannelRef.parse(CHAN), user))
    assert [c.id for c in preview.cards] == ["2606.00001"] and adapter.attempts == []
    assert statuses(engine) == {}  # a preview records nothing

    reply = await svc.ask(Invocation("digest post", ChannelRef.parse(CHAN), user))
    assert reply.title.startswith("Posted this channel's digest (1 paper)")
    assert adapter.papers_to(CHAN) == ["2606.00001"]
    # The scheduled digest does not repeat it.
    await svc.deliver_due(outbox, SLOT + timedelta(seconds=5))
    assert adapter.papers_to(CHAN) == ["2606.00001"]
    denied = await svc.ask(
        Invocation("digest post", ChannelRef.parse(CHAN), user, can_manage=False)
    )
    assert denied.is_error


@pytest.mark.postgres
def test_instances_starting_together_on_a_fresh_postgresql_create_the_schema_once() -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_URL

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"paperboy_fresh_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    engines: list[Engine] = []

    def start() -> None:
        barrier.wait()
        try:
            engines.append(make_engine(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert Ledger(engines[0]).claim(CHAN, "2401.00001", DAY0)
    finally:
        for e in engines:
            e.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


async def test_an_instance_without_the_platform_leaves_its_channels_to_others(
    engine: Engine,
) -> None:
    svc = service(engine, Clock(DAY0))
    setup_channel(svc.store, "discord:G1:42", ["dpo"], DAY0)
    svc.store.upsert_many([paper("2606.00001", "DPO one")], DAY0)
    slack_only = FakeAdapter("slack")
    report = await svc.deliver_due(Outbox({"slack": slack_only}), SLOT + timedelta(seconds=5))
    assert report.digests == 0 and runs(engine) == 0  # not claimed, not failed
    discord = FakeAdapter("discord")
    other = service(engine, Clock(DAY0))
    await other.deliver_due(Outbox({"discord": discord}), SLOT + timedelta(seconds=6))
    assert discord.papers_to("discord:G1:42") == ["2606.00001"]


async def test_claims_of_a_dead_owner_that_never_posted_are_posted_later(
    engine: Engine,
) -> None:
    from bot.delivery_open import open_due

    svc = service(engine, Clock(DAY0))
    setup_channel(svc.store, CHAN, ["dpo"], DAY0)
    svc.store.upsert_many([paper("2606.00001", "DPO one")], DAY0)
    # An instance claims (committed) and dies before its attempt: nothing was posted.
    outgoing, _ = open_due(svc.store, svc.ledger, SLOT + timedelta(seconds=5))
    assert [o.paper_ids for o in outgoing] == [["2606.00001"]]
    assert statuses(engine) == {"2606.00001": "claimed"}
    adapter = FakeAdapter()
    outbox = Outbox({"slack": adapter})
    await svc.deliver_due(outbox, SLOT + timedelta(minutes=1))  # the owner may be alive
    assert adapter.attempts == []
    await svc.deliver_due(outbox, SLOT + STALE_AFTER + timedelta(minutes=1))
    assert adapter.papers_to(CHAN) == ["2606.00001"]
    assert statuses(engine) == {"2606.00001": "sent"}
