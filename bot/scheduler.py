"""APScheduler 3.x drives two clocks in this process, and nothing else.

- `refresh`: fetch new papers from the sources every `[refresh] interval_minutes`.
- `digest-tick`: every `[digest] tick_seconds`, catch this process's search index up with the
  shared store, then `BotService.deliver_due(outbox, now)`: build, claim and post every channel
  whose slot has come, retry what waited long enough.

Schedules live in our own tables (`Channel.next_digest_at`), not in APScheduler's job store:
a job store cannot be shared between processes and deletes rows it cannot unpickle
(platforms.md A-4, A-5). So the jobs sit in a `MemoryJobStore`, have explicit ids and
`replace_existing=True` (starting twice never makes two), and every process may run the tick:
the ledger's unique constraints decide who delivers (A-5, R-3). A tick repeated by APScheduler's
at-least-once behaviour (A-6) is harmless for the same reason.

The tick is coalesced: after downtime the scheduler runs it ONCE, and that one tick builds each
overdue channel's LATEST slot only, covering everything since its previous digest.

`AsyncIOScheduler.start()` must run inside the running event loop (A-2): `start()` here is a
coroutine-side call and raises when there is no running loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot import metrics
from bot.config import Settings
from bot.delivery import DeliveryReport

logger = logging.getLogger(__name__)

REFRESH_JOB = "refresh"
TICK_JOB = "digest-tick"

Refresh = Callable[[datetime], Awaitable[Any]]
Deliver = Callable[[], Awaitable[DeliveryReport]]


class Scheduler:
    """The two jobs of one process, around an `AsyncIOScheduler` with a memory job store."""

    def __init__(
        self,
        settings: Settings,
        *,
        catch_up: Callable[[], object],
        deliver: Deliver,
        clock: Callable[[], datetime],
        refresh: Refresh | None = None,
        first_refresh: datetime | None = None,
    ) -> None:
        """`catch_up`: bring this instance's search index up to the store (blocking: run in
        a thread); `deliver`: one digest tick; `clock`: the time a refresh is for."""
        self.catch_up = catch_up
        self.deliver = deliver
        self.clock = clock
        self.refresh_fn = refresh
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            # Job defaults must go through job_defaults: a bare `misfire_grace_time=` keyword
            # on the scheduler is silently ignored (A-3, apscheduler #146).
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self.scheduler.add_listener(self._on_trouble, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        # APScheduler logs every run at INFO (one line per tick); trouble is logged by
        # `_on_trouble` and the jobs themselves.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._every(settings.digest.tick_seconds, self.tick, TICK_JOB, "digest tick")
        if refresh is not None:
            every = settings.refresh.interval_minutes * 60
            self._every(every, self.refresh, REFRESH_JOB, "refresh sources", first_refresh)

    def _every(
        self,
        seconds: int,
        job: Callable[[], Awaitable[None]],
        job_id: str,
        name: str,
        first_run: datetime | None = None,
    ) -> None:
        extra = {} if first_run is None else {"next_run_time": first_run}
        self.scheduler.add_job(
            job,
            IntervalTrigger(seconds=seconds, timezone="UTC"),
            id=job_id,
            name=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            # On purpose: with coalesce the run still due is at most one interval late, so a
            # grace of one interval means a late run (loop busy, laptop asleep) happens ONCE
            # and is never dropped as "missed" (the library default is 1 s, A-3). Both jobs
            # are safe however late they run: the tick reads what is due from our tables, and
            # one late refresh beats none.
            misfire_grace_time=seconds,
            **extra,
        )

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start inside the running loop (raises RuntimeError without one, A-2)."""
        asyncio.get_running_loop()
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    @property
    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

    def run_tick_now(self) -> None:
        """Make the tick due now (tests; an operator's nudge)."""
        # APScheduler keeps its own wall clock; the tick itself uses the service's clock.
        self.scheduler.modify_job(TICK_JOB, next_run_time=datetime.now(UTC))

    # --------------------------------------------------------------------- jobs

    async def tick(self) -> None:
        try:
            # Papers other instances stored (shared PostgreSQL) reach this instance's own
            # search index here, exactly once each (the store's change feed); in a thread,
            # since a large catch-up must not stall the acks.
            await asyncio.to_thread(self.catch_up)
            metrics.observe_index_sync()
            report = await self.deliver()
            metrics.observe_delivery(report)
        except asyncio.CancelledError:
            # Shutting down mid-tick: every step so far is in the ledger; the next start (or
            # another instance) carries on from there.
            logger.info("digest tick stopped by shutdown")
        except Exception:
            # Logged here and the next tick tries again: the ledger keeps every step.
            logger.exception("digest tick failed")

    async def refresh(self) -> None:
        assert self.refresh_fn is not None
        try:
            await self.refresh_fn(self.clock())
        except asyncio.CancelledError:
            logger.info("refresh stopped by shutdown")
        except Exception:
            logger.exception("refresh failed")

    def _on_trouble(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            logger.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
        else:
            logger.error("job %s raised: %r", event.job_id, event.exception)
