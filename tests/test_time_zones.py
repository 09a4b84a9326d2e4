"""Time is always aware: slots, windows and `last_digest_at` mean the same instant whatever the
PostgreSQL session's time zone (PGTZ, a role's setting) or the instance's own zone.

Before, the ledger bound slots through `CAST(:slots AS timestamp[])`, which drops the offset
and reads the wall clock in the session's TimeZone: in America/New_York a 05:30Z slot was
stored as another instant, and a second instance in another zone "owned" the same slot again
(two runs, a duplicate post).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlmodel import Session

from bot.config import Settings
from bot.db import make_engine
from bot.ledger import Ledger, RunRequest
from bot.models import Channel, DigestRun
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from tests.fakes import FakeAdapter, paper, setup_channel

DAY0 = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)
SLOT = datetime(2026, 6, 15, 5, 30, tzinfo=UTC)
CHAN = "slack:T1:C1"
ZONES = ("America/New_York", "Asia/Tokyo")


def in_zone(url: str, zone: str) -> str:
    """The same database, with sessions that start in `zone` (as PGTZ or a role would)."""
    return f"{url}?options={quote(f'-c timezone={zone}')}"


def stored_utc(engine: Engine, sql: str) -> str:
    """A timestamp column as text, as a UTC session prints it (no driver conversion)."""
    with engine.connect() as conn:
        return str(conn.execute(text(sql)).scalar_one())


@pytest.fixture
def zoned(pg_engine: Engine, pg_url: str) -> Iterator[list[Engine]]:
    del pg_engine  # requested for its clean schema
    engines = [make_engine(in_zone(pg_url, zone)) for zone in ZONES]
    yield engines
    for engine in engines:
        engine.dispose()


@pytest.mark.postgres
def test_sessions_in_other_zones_are_still_utc(zoned: list[Engine], pg_url: str) -> None:
    raw = create_engine(in_zone(pg_url, ZONES[0]))
    with raw.connect() as conn:  # the setting really reaches the server
        assert conn.execute(text("SHOW timezone")).scalar_one() == ZONES[0]
    raw.dispose()
    for engine in zoned:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW timezone")).scalar_one() == "UTC"


@pytest.mark.postgres
@pytest.mark.usefixtures("pg_engine")
def test_pgtz_in_the_environment_does_not_reach_our_sessions(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTZ", "America/New_York")  # libpq sends it when connecting
    raw = create_engine(pg_url)
    with raw.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar_one() == "America/New_York"
    raw.dispose()
    ours = make_engine(pg_url)
    store = PaperStore(ours)
    setup_channel(store, CHAN, ["dpo"], DAY0, at="05:30")
    owned = Ledger(ours).open_runs(
        [RunRequest(CHAN, SLOT, ["2606.00001"])], SLOT, advance={CHAN: SLOT + timedelta(days=1)}
    )
    assert list(owned) == [CHAN]
    channel = store.channel(CHAN)
    assert channel is not None and channel.last_digest_at == SLOT
    with ours.connect() as conn:
        assert conn.execute(text("SELECT slot FROM digest_run")).scalar_one() == SLOT
    ours.dispose()


@pytest.mark.postgres
async def test_two_instances_in_different_zones_fire_the_same_slot_once(
    zoned: list[Engine],
) -> None:
    first = PaperStore(zoned[0])
    setup_channel(first, CHAN, ["dpo"], DAY0, at="05:30")
    first.upsert_many(
        [paper("2606.00001", "DPO revisited"), paper("2606.00002", "More DPO")],
        DAY0 + timedelta(minutes=10),
    )
    adapter = FakeAdapter()
    outbox = Outbox({"slack": adapter})
    now = SLOT + timedelta(seconds=20)
    services = [BotService(Settings(), PaperStore(e), clock=lambda: now) for e in zoned]
    reports = await asyncio.gather(*(s.deliver_due(outbox, now) for s in services))

    assert len(adapter.delivered) == 1
    assert sorted(adapter.papers_to(CHAN)) == ["2606.00001", "2606.00002"]
    assert sorted(r.digests for r in reports) == [0, 1]
    with Session(zoned[1]) as session:
        assert session.execute(select(func.count()).select_from(DigestRun)).scalar_one() == 1
    engine = zoned[0]
    assert stored_utc(engine, "SELECT slot FROM digest_run") == "2026-06-15 05:30:00+00:00"
    assert stored_utc(engine, "SELECT last_digest_at FROM channel") == "2026-06-15 05:30:00+00:00"
    assert stored_utc(engine, "SELECT next_digest_at FROM channel") == "2026-06-16 05:30:00+00:00"

    # The next tick, later that day in either zone, builds nothing more.
    later = SLOT + timedelta(hours=3)
    for svc in services:
        await svc.deliver_due(outbox, later)
    assert len(adapter.delivered) == 1
    with Session(zoned[1]) as session:
        channel = session.get(Channel, CHAN)
        assert channel is not None and channel.next_digest_at is not None
        assert channel.next_digest_at.replace(tzinfo=UTC) == SLOT + timedelta(days=1)


@pytest.mark.postgres
def test_the_ledger_sql_alone_does_not_depend_on_the_session_zone(
    pg_engine: Engine, pg_url: str
) -> None:
    """Even on sessions left in other zones (a pooler that resets settings), the ledger's
    own statements store the slot as UTC and the second zone cannot own it again."""
    store = PaperStore(pg_engine)
    setup_channel(store, CHAN, ["dpo"], DAY0, at="05:30")
    raws = [create_engine(in_zone(pg_url, zone)) for zone in ZONES]
    try:
        owned = [
            Ledger(raw).open_runs(
                [RunRequest(CHAN, SLOT, ["2606.00001"])],
                SLOT,
                advance={CHAN: SLOT + timedelta(days=1)},
            )
            for raw in raws
        ]
        assert [len(o) for o in owned] == [1, 0]
        assert stored_utc(pg_engine, "SELECT slot FROM digest_run") == "2026-06-15 05:30:00+00:00"
        assert stored_utc(pg_engine, "SELECT claimed_at FROM delivery") == (
            "2026-06-15 05:30:00+00:00"
        )
        assert stored_utc(pg_engine, "SELECT last_digest_at FROM channel") == (
            "2026-06-15 05:30:00+00:00"
        )
        assert stored_utc(pg_engine, "SELECT next_digest_at FROM channel") == (
            "2026-06-16 05:30:00+00:00"
        )
    finally:
        for raw in raws:
            raw.dispose()


def test_sqlite_stores_a_slot_given_in_another_zone_as_utc(sqlite_engine: Engine) -> None:
    from zoneinfo import ZoneInfo

    store = PaperStore(sqlite_engine)
    setup_channel(store, CHAN, ["dpo"], DAY0, at="05:30")
    local = SLOT.astimezone(ZoneInfo("America/New_York"))  # 01:30 local, the same instant
    owned = Ledger(sqlite_engine).open_runs([RunRequest(CHAN, local, ["2606.00001"])], SLOT)
    again = Ledger(sqlite_engine).open_runs([RunRequest(CHAN, SLOT, ["2606.00002"])], SLOT)
    assert len(owned) == 1 and again == {}
    assert stored_utc(sqlite_engine, "SELECT slot FROM digest_run").startswith(
        "2026-06-15 05:30:00"
    )


@pytest.mark.postgres
async def test_status_times_say_utc_and_are_utc_in_a_new_york_session(
    zoned: list[Engine],
) -> None:
    from bot.messages import ChannelRef, Invocation, UserRef

    store = PaperStore(zoned[0])
    store.record_source_success("hf", datetime(2026, 6, 12, 12, 0, tzinfo=UTC), added=1)
    service = BotService(Settings(), store, clock=lambda: SLOT)
    reply = await service.ask(
        Invocation("status", ChannelRef("slack", "T1", "C1"), UserRef("slack", "U1"))
    )
    assert "last fetched 2026-06-12 12:00 UTC" in reply.text
