"""The scheduler: two jobs, started inside the loop, coalesced, never dropped as "missed".

The catch-up behaviour of the digests themselves (one digest after three days down, two
instances on one slot) is in test_delivery.py; here is what APScheduler is asked to do.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.jobstores.memory import MemoryJobStore
from sqlalchemy import Engine

from bot.config import Settings
from bot.delivery import DeliveryReport
from bot.scheduler import REFRESH_JOB, TICK_JOB, Scheduler
from bot.store import PaperStore

NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


class Counting:
    def __init__(self) -> None:
        self.ticks = 0
        self.refreshes: list[datetime] = []

    async def deliver_due(self) -> DeliveryReport:
        self.ticks += 1
        return DeliveryReport()

    async def refresh(self, now: datetime) -> None:
        self.refreshes.append(now)


def make(
    sqlite_engine: Engine, counting: Counting, store: PaperStore | None = None, **kw: Any
) -> Scheduler:
    store = store or PaperStore(sqlite_engine)
    return Scheduler(
        Settings(),
        catch_up=store.sync_index,
        deliver=counting.deliver_due,
        clock=lambda: NOW,
        **kw,
    )


def test_exactly_two_jobs_with_explicit_ids_and_deliberate_settings(
    sqlite_engine: Engine,
) -> None:
    counting = Counting()
    sched = make(sqlite_engine, counting, refresh=counting.refresh)
    assert sched.job_ids == sorted([TICK_JOB, REFRESH_JOB])
    assert len(sched.scheduler.get_jobs()) == 2
    assert isinstance(sched.scheduler._jobstores["default"], MemoryJobStore)
    settings = Settings()
    for job in sched.scheduler.get_jobs():
        assert job.coalesce is True and job.max_instances == 1
        # Not the library's 1 s: a late run happens once instead of being dropped.
        assert job.misfire_grace_time >= settings.digest.tick_seconds
    tick = sched.scheduler.get_job(TICK_JOB)
    assert tick.trigger.interval == timedelta(seconds=settings.digest.tick_seconds)


def test_starting_outside_a_running_loop_raises(sqlite_engine: Engine) -> None:
    sched = make(sqlite_engine, Counting())
    with pytest.raises(RuntimeError):
        sched.start()
    assert not sched.scheduler.running


async def _run_overdue(sched: Scheduler, late: timedelta) -> list[JobEvent]:
    """Start, make the tick `late` overdue, let APScheduler process it; the job events."""
    events: list[JobEvent] = []
    seen = asyncio.Event()

    def listen(event: JobEvent) -> None:
        events.append(event)
        seen.set()

    sched.scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    sched.start()
    try:
        sched.scheduler.pause()
        sched.scheduler.modify_job(TICK_JOB, next_run_time=datetime.now(UTC) - late)
        sched.scheduler.resume()  # processes the due jobs now
        await asyncio.wait_for(seen.wait(), 30)
        await asyncio.sleep(0)
    finally:
        sched.stop()
    return events


async def test_a_tick_two_hours_overdue_runs_exactly_once(sqlite_engine: Engine) -> None:
    counting = Counting()
    sched = make(sqlite_engine, counting)
    # Half an interval past a run time: with the library's 1 s grace this run would be dropped.
    late = timedelta(hours=2, seconds=Settings().digest.tick_seconds // 2)
    events = await _run_overdue(sched, late)
    assert [e.code for e in events] == [EVENT_JOB_EXECUTED]
    assert counting.ticks == 1


async def test_the_library_default_grace_would_drop_that_tick(sqlite_engine: Engine) -> None:
    """Why the grace is set on purpose (platforms.md A-3)."""
    counting = Counting()
    sched = make(sqlite_engine, counting)
    sched.scheduler.modify_job(TICK_JOB, misfire_grace_time=1)
    late = timedelta(hours=2, seconds=Settings().digest.tick_seconds // 2)
    events = await _run_overdue(sched, late)
    assert [e.code for e in events] == [EVENT_JOB_MISSED]
    assert counting.ticks == 0


async def test_refresh_job_calls_the_sources_with_the_service_clock(
    sqlite_engine: Engine,
) -> None:
    counting = Counting()
    sched = make(sqlite_engine, counting, refresh=counting.refresh)
    await sched.refresh()
    assert counting.refreshes == [NOW]


async def test_a_tick_brings_papers_another_instance_stored_into_this_index(
    sqlite_engine: Engine, tmp_path: Any
) -> None:
    from bot.index import open_index
    from bot.search import parse_query, search_papers
    from tests.fakes import paper

    counting = Counting()
    store = PaperStore(sqlite_engine, index=open_index(tmp_path / "index"))
    sched = make(sqlite_engine, counting, store)
    PaperStore(sqlite_engine).upsert_many([paper("2601.00001", "Walrus tuning")], NOW)

    def hits() -> list[str]:
        found = search_papers(store, parse_query("walrus", NOW), 5, NOW)
        return [h.paper.id for h in found]

    assert hits() == []
    await sched.tick()
    assert hits() == ["2601.00001"] and counting.ticks == 1
    store.close()
