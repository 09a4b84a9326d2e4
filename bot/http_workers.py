"""Slack HTTP mode on several cores: `[slack] http_workers` processes answer on one port.

`paperboy run` stays the one process that runs the scheduler, refreshes the sources and writes
the search index. With `http_workers = N` (N > 1) it also starts N-1 worker processes; each
serves only the Slack HTTP endpoint, on the same host:port (SO_REUSEPORT: the kernel spreads
connections over the processes, and each has its own GIL). A worker reads the shared store and
follows the index the first process writes (its cache empties on every commit there); a
paper it fetches on demand is stored, and reaches the index at the first process's next tick.
Workers stop on SIGTERM/SIGINT, and on their own when the first process is gone. A worker
that dies (a crash, the OOM killer, a `kill -9`) is started again by the first process
(`keep_alive`): at once after a steady run, after a wait that doubles (5 s up to 5 min) while
it keeps dying within a minute of its start.

Part of the composition root: like `bot.runtime`, it imports the adapter inside a function.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from bot.service import BotService
    from bot.store import PaperStore

logger = logging.getLogger(__name__)

PARENT_CHECK = 1.0  # seconds between checks that the first process is still there
WATCH_EVERY = 2.0  # seconds between the first process's looks at its workers
STEADY = 60.0  # a worker that ran this long and died comes back at once ...
BACKOFF_FIRST = 5.0  # ... one that dies sooner waits this long, doubling each time ...
BACKOFF_MAX = 300.0  # ... up to this


def wanted(settings: Settings) -> int:
    """How many worker processes to start besides this one."""
    slack = settings.slack
    if slack.mode != "http" or "slack" not in settings.platforms():
        return 0
    return slack.http_workers - 1


def start_workers(settings: Settings) -> list[BaseProcess]:
    """Start the worker processes (none unless HTTP mode asks for more than one)."""
    workers = [start_worker(settings, number) for number in range(1, wanted(settings) + 1)]
    if workers:
        logger.info("Slack HTTP: %d worker processes share the port", len(workers))
    return workers


def start_worker(settings: Settings, number: int) -> BaseProcess:
    """Start worker `number` (1, 2, ...), a child of this process."""
    context = multiprocessing.get_context("spawn")  # no copy of this process's loop or locks
    handlers = logging.getLogger().handlers
    formatter = handlers[0].formatter if handlers else None  # log lines like this process's
    worker = context.Process(
        target=worker_main,
        args=(settings, number, os.getpid(), formatter),
        name=f"paperboy-slack-{number}",
        daemon=True,
    )
    worker.start()
    return worker


async def keep_alive(
    workers: list[BaseProcess],
    restart: Callable[[int], BaseProcess],
    *,
    every: float = WATCH_EVERY,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Until cancelled: every `every` seconds, start again (`restart(number)`) each worker
    of `workers` that died, in place (so `stop_workers` stops the new one). A worker that ran
    `STEADY` seconds or more comes back at once; one that keeps dying sooner waits
    `BACKOFF_FIRST` seconds, then twice as long each time, up to `BACKOFF_MAX`."""
    born = [clock() for _ in workers]
    waits = [0.0 for _ in workers]
    retry_at: dict[int, float] = {}
    while True:
        await asyncio.sleep(every)
        now = clock()
        for i, worker in enumerate(workers):
            if worker.is_alive():
                continue
            if i not in retry_at:
                quick = now - born[i] < STEADY
                waits[i] = min(BACKOFF_MAX, max(BACKOFF_FIRST, waits[i] * 2)) if quick else 0.0
                retry_at[i] = now + waits[i]
                later = f" in {waits[i]:.0f} s" if waits[i] else ""
                logger.warning(
                    "%s stopped (exit code %s): starting it again%s",
                    worker.name,
                    worker.exitcode,
                    later,
                )
            if now >= retry_at[i]:
                workers[i] = await asyncio.to_thread(restart, i + 1)
                born[i] = clock()
                del retry_at[i]


class WorkerPool:
    """The worker processes of this run (none unless HTTP mode asks for more than one),
    kept alive (`keep_alive`) until `stop`. Made inside the running event loop."""

    def __init__(self, settings: Settings) -> None:
        self.workers = start_workers(settings)
        restart = functools.partial(start_worker, settings)
        self._keeper = (
            asyncio.create_task(keep_alive(self.workers, restart), name="http-workers")
            if self.workers
            else None
        )

    async def stop(self, timeout: float) -> None:
        """No more restarts; then SIGTERM each worker, and kill what is left after
        `timeout`."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await asyncio.to_thread(stop_workers, self.workers, timeout)


def stop_workers(workers: list[BaseProcess], timeout: float) -> None:
    """SIGTERM each worker, wait up to `timeout` in all, then kill what is left (blocking)."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            logger.warning("%s did not stop in time: killed", worker.name)
            worker.kill()
            worker.join(1.0)


def worker_main(
    settings: Settings, number: int, parent: int, formatter: logging.Formatter | None = None
) -> None:
    """A worker process's life: serve until a signal, or until the first process is gone."""
    _log_like_parent(settings, number, formatter)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, parent))


async def _serve(settings: Settings, parent: int) -> None:
    from bot.service import BotService
    from bot.sources import Sources, make_client

    store = follower_store(settings.database_url, settings.index_dir)
    client = make_client(settings.sources.timeout_seconds)
    service = BotService(settings, store, remote=Sources(settings, client))  # lookups only
    try:
        await serve_worker(service, settings, parent)
    finally:
        await client.aclose()
        store.close()


def follower_store(database_url: str, index_dir: Path) -> PaperStore:
    """The shared store, with the index opened read-only: it follows the writer's commits."""
    from bot.db import make_engine
    from bot.index import PaperIndex
    from bot.store import PaperStore

    index = PaperIndex(index_dir)
    index.read_only = True
    return PaperStore(make_engine(database_url), index)


async def serve_worker(
    service: BotService, settings: Settings, parent: int, ready: Callable[[], None] | None = None
) -> None:
    """Serve `[slack] host:port` beside the other processes until SIGTERM/SIGINT, or until
    the process `parent` is gone; then stop the adapter (commands in flight are answered)."""
    from adapters.slack import SlackAdapter

    adapter = SlackAdapter(service, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await adapter.serve_http(settings.slack.host, settings.slack.port, reuse_port=True)
        if ready is not None:
            ready()
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARENT_CHECK)
    finally:
        await adapter.stop()


def _log_like_parent(settings: Settings, number: int, formatter: logging.Formatter | None) -> None:
    """A spawned process starts without the parent's logging: the same level and format
    (the parent's formatter, pickled), each record's logger name marking the worker."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        formatter or logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(_Tag(f"[worker {number}]"))
    logging.basicConfig(level=getattr(logging, settings.logging.level), handlers=[handler])


class _Tag(logging.Filter):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.endswith(self.tag):
            record.name += self.tag
        return True
