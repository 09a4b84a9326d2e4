"""The composition root: settings -> store -> service -> adapters -> scheduler.

This is the one core module that names adapters, and it imports them inside the functions that
build them, so importing `bot.runtime` loads no platform SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bot import http_workers, metrics
from bot.config import Settings, reveal
from bot.db import make_engine
from bot.errors import ConfigError
from bot.index import PaperIndex
from bot.ports import Adapter, Outbox, PaperLookup
from bot.reachability import network_reason
from bot.scheduler import Scheduler
from bot.service import BotService, Clock, utc_now
from bot.store import PaperStore

logger = logging.getLogger(__name__)


def open_store(settings: Settings, *, index_dir: Path | None = None) -> PaperStore:
    """The store with its search index, caught up with anything that changed meanwhile."""
    engine = make_engine(settings.database_url)
    store = PaperStore(engine, PaperIndex(index_dir or settings.index_dir))
    caught_up = store.sync_index()
    if caught_up:
        logger.info("search index caught up with %d changed papers", caught_up)
    return store


def build_service(
    settings: Settings,
    store: PaperStore,
    *,
    clock: Clock = utc_now,
    remote: PaperLookup | None = None,
    outbox: Outbox | None = None,
) -> BotService:
    return BotService(settings, store, clock=clock, remote=remote, outbox=outbox)


def build_adapters(settings: Settings, service: BotService) -> dict[str, Adapter]:
    """The adapters the configuration asks for (tokens present), the console otherwise."""
    adapters: dict[str, Adapter] = {}
    for platform in settings.platforms():
        if platform == "console":
            from adapters.console import ConsoleAdapter

            adapters[platform] = ConsoleAdapter(
                service, history_file=settings.data_dir / "console_history"
            )
        elif platform == "slack":
            from adapters.slack import SlackAdapter

            adapters[platform] = SlackAdapter(service, settings)
        elif platform == "discord":
            from adapters.discord import DiscordAdapter

            adapters[platform] = DiscordAdapter(
                service, token=reveal(settings.secrets.discord_token), settings=settings.discord
            )
    return adapters


# SIGINT/SIGTERM stop the process within this many seconds whatever it is doing (docker stop
# waits 10 s before SIGKILL). Work cut short is safe: the ledger has every step so far.
SHUTDOWN_GRACE = 8.0
# A platform that cannot connect is tried again after these waits (the last one repeats).
RECONNECT_BACKOFF = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
PLATFORM_NAMES = {"slack": "Slack", "discord": "Discord", "console": "the console"}


async def _until_stopped(stop: asyncio.Event, adapters: Iterable[Adapter]) -> None:
    """Wait for a signal, or for an adapter that ends the bot by itself (the console's
    `quit`)."""
    waiters = [asyncio.create_task(stop.wait())]
    for adapter in adapters:
        done = getattr(adapter, "finished", None)
        if done is not None:
            waiters.append(asyncio.create_task(done.wait()))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM (or the console's `quit`), then stop in reverse order.

    Each platform connects in its own task, so one that cannot reach its servers retries with
    backoff (one log line per step) while the others, the refresh and the digests carry on,
    and a signal stops everything in any state: connecting, retrying, mid-tick, mid-refresh.
    """
    store = open_store(settings)
    sources, refresh, close_sources = _sources(settings, store)
    outbox = Outbox()  # `/papers digest post` and the digest tick post through it
    service = build_service(settings, store, remote=sources, outbox=outbox)
    adapters = build_adapters(settings, service)
    for adapter in adapters.values():
        outbox.add(adapter)
    scheduler = Scheduler(
        settings,
        catch_up=store.sync_index,
        deliver=partial(service.deliver_due, outbox),
        clock=service.clock,
        refresh=refresh,
        first_refresh=datetime.now(UTC),
    )
    states = {name: "connecting" for name in adapters}
    watch = await _serve_metrics(settings, store, states)
    workers = http_workers.WorkerPool(settings)  # Slack HTTP mode on more cores
    stop = _stop_on_signals()
    connecting = [
        asyncio.create_task(_keep_connecting(name, adapter, states), name=f"connect-{name}")
        for name, adapter in adapters.items()
    ]
    try:
        # Inside the running loop; every instance runs it: the ledger decides who posts.
        scheduler.start()
        await _until_stopped(stop, adapters.values())
    finally:
        for task in connecting:
            task.cancel()
        await asyncio.gather(*connecting, return_exceptions=True)
        stopping = asyncio.create_task(workers.stop(SHUTDOWN_GRACE / 2))
        scheduler.stop()
        await _stop_adapters(adapters.values())
        await close_sources()
        await stopping
        if watch is not None:
            await watch.stop()
        store.close()


async def _stop_adapters(adapters: Iterable[Adapter]) -> None:
    """Stop every adapter, last built first, also one still connecting (its half-open
    session is closed too); one that fails to stop does not keep the others running."""
    for adapter in reversed(list(adapters)):
        try:
            await asyncio.wait_for(adapter.stop(), timeout=SHUTDOWN_GRACE / 2)
        except Exception as exc:  # noqa: BLE001 - stopping goes on for the others
            logger.warning("%s did not stop cleanly: %s", adapter.platform, exc)


async def _serve_metrics(
    settings: Settings, store: PaperStore, states: dict[str, str]
) -> metrics.MetricsServer | None:
    """/healthz and /metrics for this process (`[metrics]`), store-read gauges included."""
    if not settings.metrics.enabled:
        return None
    global _collector
    if _collector is None:  # once per process: a registry refuses a second one
        _collector = metrics.StoreCollector(list, time.time)
        metrics.REGISTRY.register(_collector)
    _collector.states = store.source_states
    metrics.observe_index_sync()  # open_store has just caught the index up
    server = metrics.MetricsServer(
        settings.metrics.host, settings.metrics.port, health=lambda: {"platforms": states}
    )
    await server.start()
    return server


_collector: metrics.StoreCollector | None = None


def _stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (a second signal exits at once)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _on_signal, sig, stop)
    return stop


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    if stop.is_set():
        logger.warning("%s again: exiting now", sig.name)
        os._exit(128 + int(sig))
    logger.info("%s: stopping (within %.0f s)", sig.name, SHUTDOWN_GRACE)
    stop.set()
    _arm_watchdog(SHUTDOWN_GRACE)


def _arm_watchdog(seconds: float) -> None:
    """A last resort for a stop that hangs (a thread stuck in a blocking call): the process
    ends anyway, so `docker stop` never needs SIGKILL. A daemon thread, not the event loop,
    because the loop may be what is stuck."""

    def expire() -> None:
        logger.error("stopping took longer than %.0f s: exiting without waiting", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


async def _keep_connecting(name: str, adapter: Adapter, states: dict[str, str]) -> None:
    """Start one platform, retrying with backoff while its servers cannot be reached.

    A configuration problem (a rejected token) is logged once and that platform stays off;
    the rest of the bot runs on.
    """
    label = PLATFORM_NAMES.get(name, name)
    for attempt in itertools.count():
        try:
            await adapter.start()
        except ConfigError as exc:
            logger.error("%s is off: %s", label, exc)
            states[name] = "off: configuration"
            return
        except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
            delay = RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)]
            reason = network_reason(exc) or f"{type(exc).__name__}: {str(exc)[:120]}"
            logger.warning("cannot reach %s (%s): retrying in %.0f s", label, reason, delay)
            states[name] = f"retrying: {reason}"
            with contextlib.suppress(Exception):
                await adapter.stop()
            await asyncio.sleep(delay)
        else:
            states[name] = "connected"
            if attempt:
                logger.info("%s connected", label)
            return


def _sources(
    settings: Settings, store: PaperStore
) -> tuple[PaperLookup, Callable[[datetime], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    """The remote sources over one shared HTTP client (`bot.sources.Sources`): they answer
    on-demand lookups, and the scheduler's refresh job; and how to close that client."""
    from bot.sources import Sources, make_client

    client = make_client(settings.sources.timeout_seconds)
    sources = Sources(settings, client)

    async def refresh(now: datetime) -> None:
        logger.info("refresh: fetching new papers")
        report = await sources.refresh(store, now)
        metrics.observe_refresh(report)
        logger.info("refresh: %s", report.summary())

    return sources, refresh, client.aclose
