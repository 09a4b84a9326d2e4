"""The composition root: settings -> store -> service -> adapters -> scheduler.

This is the one core module that names adapters, and it imports them inside the functions that
build them, so importing `bot.runtime` loads no platform SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings, reveal
from bot.db import make_engine
from bot.index import PaperIndex
from bot.ports import Adapter, Outbox
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


def build_service(settings: Settings, store: PaperStore, *, clock: Clock = utc_now) -> BotService:
    return BotService(settings, store, clock=clock)


def build_adapters(settings: Settings, service: BotService) -> dict[str, Adapter]:
    """The adapters the configuration asks for (tokens present), the console otherwise."""
    adapters: dict[str, Adapter] = {}
    for platform in settings.platforms():
        if platform == "console":
            from adapters.console import ConsoleAdapter

            adapters[platform] = ConsoleAdapter(service)
        elif platform == "slack":
            from adapters.slack import SlackAdapter

            adapters[platform] = SlackAdapter(service, settings)
        elif platform == "discord":
            from adapters.discord import DiscordAdapter

            adapters[platform] = DiscordAdapter(
                service, token=reveal(settings.secrets.discord_token), settings=settings.discord
            )
    return adapters


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM (or the console's `quit`), then stop in reverse order."""
    store = open_store(settings)
    service = build_service(settings, store)
    adapters = build_adapters(settings, service)
    outbox = Outbox(adapters)
    service.outbox = outbox  # `/papers digest post` posts through the ledger
    refresh, close_sources = _refresh_job(settings, service)
    scheduler = Scheduler(
        settings, service, outbox, refresh=refresh, first_refresh=datetime.now(UTC)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    started: list[Adapter] = []
    try:
        for adapter in adapters.values():
            await adapter.start()
            started.append(adapter)
        # Inside the running loop; every instance runs it: the ledger decides who posts.
        scheduler.start()
        waiters = [asyncio.create_task(stop.wait())]
        for adapter in started:
            done = getattr(adapter, "finished", None)
            if done is not None:
                waiters.append(asyncio.create_task(done.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in waiters:
            task.cancel()
    finally:
        scheduler.stop()
        for adapter in reversed(started):
            with contextlib.suppress(Exception):
                await adapter.stop()
        await close_sources()
        store.close()


def _refresh_job(
    settings: Settings, service: BotService
) -> tuple[Callable[[datetime], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    """The scheduler's refresh job over one shared HTTP client (`bot.sources.Sources`), and
    how to close that client. The same Sources answer on-demand lookups."""
    from bot.sources import Sources, make_client

    client = make_client(settings.sources.timeout_seconds)
    sources = Sources(settings, client)
    if service.remote is None:
        service.remote = sources

    async def refresh(now: datetime) -> None:
        report = await sources.refresh(service.store, now)
        logger.info("refresh: %s", report.summary())

    return refresh, client.aclose
