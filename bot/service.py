"""BotService: the core's one entry point for adapters, the scheduler and the CLI."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

from bot import metrics
from bot.commands import COMMANDS, Context, parse_text
from bot.config import Settings
from bot.delivery import DeliveryReport, Ledger, deliver_due
from bot.errors import IndexDamaged
from bot.messages import Invocation, Reply, ReplyKind, error
from bot.ports import Outbox, PaperLookup
from bot.store import PaperStore

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# Commands whose store work can take seconds (a digest preview over a 40k-paper window).
HEAVY_COMMANDS = frozenset({"digest"})
MAX_HEAVY_PER_CHANNEL = 2  # more at once in one channel are turned away politely
HEAVY_WORKERS = 2  # threads for heavy commands, all channels together
WORKERS = 8  # threads for every other command
# One pair of pools per process (threads start on first use): every service shares them.
_POOL = ThreadPoolExecutor(WORKERS, thread_name_prefix="paperboy-cmd")
_HEAVY_POOL = ThreadPoolExecutor(HEAVY_WORKERS, thread_name_prefix="paperboy-heavy")


class _OnLoop:
    """`target`'s coroutine methods, run on `loop` (the adapters' and sources' loop) when
    called from a command's worker-thread loop: HTTP clients and locks belong to one loop."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def on_loop(*args: Any, **kwargs: Any) -> Any:
            if asyncio.get_running_loop() is self._loop:
                return await attr(*args, **kwargs)
            future = asyncio.run_coroutine_threadsafe(attr(*args, **kwargs), self._loop)
            return await asyncio.wrap_future(future)

        return on_loop


_thread = threading.local()


def _run(answer: Awaitable[Reply]) -> Reply:
    """Run a command's coroutine to its end on this worker thread's own event loop, kept for
    the thread's life (a new loop per command cost ~20% more CPU per search)."""
    loop = getattr(_thread, "loop", None)
    if loop is None:
        loop = _thread.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop.run_until_complete(cast("Coroutine[Any, Any, Reply]", answer))


class BotService:
    def __init__(
        self,
        settings: Settings,
        store: PaperStore,
        *,
        clock: Clock = utc_now,
        remote: PaperLookup | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.remote = remote
        # Set by the runtime once adapters exist: `/papers digest post` posts through it.
        self.outbox: Outbox | None = None
        self.ledger = Ledger(store.engine)
        self._rebuild: asyncio.Task[None] | None = None
        self._heavy: dict[str, int] = {}

    async def handle(self, inv: Invocation, *, offline: bool = False) -> Reply:
        """Answer one `/papers ...` command (see `_answer`), counted in the metrics by kind
        with its latency; a reply that sends the adapter back online is counted once, when
        the answer comes."""
        started = time.perf_counter()
        reply = await self._answer(inv, offline=offline)
        if not reply.needs_network:
            name, _ = parse_text(inv.text)
            metrics.observe_command(name, time.perf_counter() - started)
        return reply

    async def _answer(self, inv: Invocation, *, offline: bool = False) -> Reply:
        """Answer one `/papers ...` command. User mistakes and our own failures both come
        back as a short, helpful Reply; nothing raises to the adapter.

        `offline`: answer from the store only. When the answer needs a remote lookup (a paper
        not in the store, a search with too few local hits), the reply says so
        (`needs_network`) at once: the adapter acks the platform, then asks again without
        `offline`. Adapters ask offline first, so the usual answer costs one search.
        """
        name, args = parse_text(inv.text)
        spec = COMMANDS[name]
        if spec.manages_channel and not inv.can_manage:
            return error(
                f"Only people who can manage this channel may use `{spec.name}`.",
                "Ask a channel manager, or see `/papers list` for what is set up.",
            )
        heavy = spec.name in HEAVY_COMMANDS
        if heavy and offline:
            # Seconds of store work: the adapter acks the platform first, then asks again.
            return Reply(kind=ReplyKind.INFO, title="", needs_network=True, ephemeral=True)
        loop = asyncio.get_running_loop()
        ctx = Context(
            inv,
            self.store,
            self.settings,
            self.clock(),
            cast("PaperLookup", _OnLoop(self.remote, loop)) if self.remote else None,
            offline,
            cast("Outbox", _OnLoop(self.outbox, loop)) if self.outbox else None,
            self.ledger,
        )
        key = inv.channel.key
        if heavy:
            if self._heavy.get(key, 0) >= MAX_HEAVY_PER_CHANNEL:
                return error(
                    f"This channel already has {MAX_HEAVY_PER_CHANNEL} `{spec.name}` commands "
                    "running.",
                    "Try again in a moment, when they have answered.",
                )
            self._heavy[key] = self._heavy.get(key, 0) + 1
        try:
            # The handler (store and index work, all synchronous) runs in a worker thread with
            # its own event loop, so this loop keeps acking other commands meanwhile. Heavy
            # commands have their own small pool: ten digest previews never queue a search.
            pool = _HEAVY_POOL if heavy else _POOL
            return await loop.run_in_executor(pool, _run, spec.handler(ctx, args))
        except IndexDamaged as exc:
            logger.error("search index damaged while answering %r: %s", inv.text, exc)
            self.rebuild_index_soon()
            return error(
                "Search is being repaired.",
                "The search index was damaged and is being rebuilt from the paper store. "
                "Try again in a few minutes; `/papers help` still works.",
            )
        except Exception:
            logger.exception("command %r failed in %s", inv.text, inv.channel.key)
            return error(
                "Sorry, something went wrong on my side.",
                "It has been logged. Try again in a moment, or `/papers help`.",
            )
        finally:
            if heavy:
                self._heavy[key] -= 1
                if not self._heavy[key]:
                    del self._heavy[key]

    def rebuild_index_soon(self) -> asyncio.Task[None] | None:
        """Rebuild the search index from the store in a worker thread, once at a time."""
        if self._rebuild is not None and not self._rebuild.done():
            return self._rebuild
        index = self.store.index
        if index is None:
            return None

        def rebuild() -> None:
            index.recreate()
            count = self.store.sync_index()
            logger.warning("search index rebuilt from the store: %d papers", count)

        async def run() -> None:
            try:
                await asyncio.to_thread(rebuild)
            except Exception:
                logger.exception("rebuilding the search index failed")

        self._rebuild = asyncio.get_running_loop().create_task(run())
        return self._rebuild

    async def deliver_due(self, outbox: Outbox, now: datetime | None = None) -> DeliveryReport:
        """One digest tick (the scheduler calls it): see `bot.delivery.deliver_due`."""
        return await deliver_due(self.store, self.ledger, outbox, now or self.clock())
