"""BotService: the core's one entry point for adapters, the scheduler and the CLI."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine

from bot import metrics
from bot.command_context import CommandSpec, Context, Later
from bot.commands import COMMANDS, PAPER, parse_text
from bot.config import Settings
from bot.delivery import DeliveryReport, deliver_due
from bot.errors import IndexDamaged
from bot.ledger import Ledger
from bot.messages import Answer, ChannelRef, Invocation, Pending, ReactionEvent, Reply, error
from bot.ports import Outbox, PaperLookup
from bot.store import PaperStore
from bot.taste_store import Outcome, record

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# Commands whose store work can take seconds (a digest preview over a 40k-paper window).
HEAVY_COMMANDS = frozenset({"digest"})
MAX_HEAVY_PER_CHANNEL = 2  # more at once in one channel are turned away politely
# Discord drops an interaction not answered within 3 s, Slack a command: an answer that takes
# longer than this comes back `Pending`, so the adapter acks first and follows up.
ACK_BUDGET = 2.0
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
COMMAND_NAMES = frozenset(COMMANDS)


def _run(work: Callable[[], Awaitable[Reply | Later]]) -> Reply | Later:
    """Run a command's coroutine to its end on this worker thread's own event loop, kept for
    the thread's life (a new loop per command cost ~20% more CPU per search)."""
    loop = getattr(_thread, "loop", None)
    if loop is None:
        loop = _thread.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop.run_until_complete(cast("Coroutine[Any, Any, Reply | Later]", work()))


class BotService:
    """What adapters, the scheduler and the CLI talk to. Everything is given at construction:
    `remote` answers on-demand lookups, `outbox` posts `/papers digest post` (both optional:
    without them those answers say what is missing)."""

    def __init__(
        self,
        settings: Settings,
        store: PaperStore,
        *,
        clock: Clock = utc_now,
        remote: PaperLookup | None = None,
        outbox: Outbox | None = None,
        ack_budget: float = ACK_BUDGET,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.remote = remote
        self.outbox = outbox
        self.ack_budget = ack_budget
        self.ledger = Ledger(store.engine)
        self._rebuild: asyncio.Task[None] | None = None
        self._heavy: dict[str, int] = {}

    @property
    def engine(self) -> Engine:
        """The database, for tables an adapter keeps itself (Slack installations)."""
        return self.store.engine

    async def handle(self, inv: Invocation) -> Answer:
        """Answer one `/papers ...` command: a `Reply` when the store answers within
        `ack_budget` seconds, else a `Pending` (a remote lookup, seconds of store work, a slow
        database) that the adapter awaits after acking the platform. User mistakes and our
        own failures both come back as a short, helpful Reply; nothing raises to the adapter.
        Every answer is counted in the metrics by kind, with its latency."""
        return await self._answer(inv, self.ack_budget)

    async def ask(self, inv: Invocation) -> Reply:
        """The whole answer, however long it takes (the console, the CLI, tests)."""
        answer = await self._answer(inv, None)
        return await answer.reply() if isinstance(answer, Pending) else answer

    async def _answer(self, inv: Invocation, budget: float | None) -> Answer:
        started = time.perf_counter()
        name, args = parse_text(inv.text)
        spec = COMMANDS[name]
        if spec.manages_channel and not inv.can_manage:
            denied = error(
                f"Only people who can manage this channel may use `{spec.name}`.",
                "Ask a channel manager, or see `/papers list` for what is set up.",
            )
            metrics.observe_command(spec.name, time.perf_counter() - started)
            return denied
        ctx = self._context(inv)
        first = functools.partial(spec.handler, ctx, args)
        if budget is None:  # nobody to ack: the whole answer at once
            return await self._settle(spec, inv, started, self._execute(spec, inv, first))
        if spec.name in HEAVY_COMMANDS:
            # Seconds of store work: the adapter acks the platform first.
            return self._pending(
                spec, lambda: self._settle(spec, inv, started, self._execute(spec, inv, first))
            )
        task = asyncio.ensure_future(self._execute(spec, inv, first))
        # `wait`, not `wait_for`: the task goes on when the budget runs out.
        await asyncio.wait((task,), timeout=budget)
        result = task.result() if task.done() else None
        if result is None or isinstance(result, Later):
            return self._pending(spec, lambda: self._settle(spec, inv, started, task))
        metrics.observe_command(spec.name, time.perf_counter() - started)
        return result

    async def topics(self, channel: ChannelRef) -> list[str]:
        """The topics a channel follows, in `/papers list` order (autocomplete)."""
        subs = await asyncio.to_thread(self.store.subscriptions, channel.key)
        return [sub.query for sub in subs]

    async def react(self, event: ReactionEvent) -> Outcome | None:
        """Someone reacted on (or took a reaction back from) a message: a 👍/👎 on one of the
        bot's posts teaches the channel's digest ranking (`bot.taste`); anything else is
        ignored. Never raises: None when recording failed (logged)."""
        try:
            return await asyncio.to_thread(record, self.store.engine, event, self.clock())
        except Exception:
            logger.exception("could not record a reaction in %s", event.channel.key)
            return None

    async def workspace_gone(self, platform: str, workspace: str, reason: str) -> int:
        """The bot was removed from a workspace (Slack) or server (Discord): pause its
        channels' digests, saying `reason` in `/papers list`. Returns how many."""
        prefix = f"{platform}:{workspace}:"
        return await asyncio.to_thread(self.store.pause_channels, prefix, reason)

    def _context(self, inv: Invocation) -> Context:
        loop = asyncio.get_running_loop()
        return Context(
            inv,
            self.store,
            self.settings,
            self.clock(),
            self.ledger,
            cast("PaperLookup", _OnLoop(self.remote, loop)) if self.remote else None,
            cast("Outbox", _OnLoop(self.outbox, loop)) if self.outbox else None,
            COMMAND_NAMES,
        )

    def _pending(self, spec: CommandSpec, finish: Callable[[], Awaitable[Reply]]) -> Pending:
        # Fixed before the answer exists (Discord's deferral decides it): channel changes and
        # paper details are public, everything else private, as their replies are.
        return Pending(finish, ephemeral=not (spec.name == PAPER or spec.manages_channel))

    async def _settle(
        self,
        spec: CommandSpec,
        inv: Invocation,
        started: float,
        first: Awaitable[Reply | Later],
    ) -> Reply:
        """Run an answer to its end: its first step, its remote part(s); then count it."""
        result = await first
        while isinstance(result, Later):
            result = await self._execute(spec, inv, result.finish)
        metrics.observe_command(spec.name, time.perf_counter() - started)
        return result

    async def _execute(
        self, spec: CommandSpec, inv: Invocation, work: Callable[[], Awaitable[Reply | Later]]
    ) -> Reply | Later:
        """Run one step of a handler in a worker thread; failures become a short Reply."""
        heavy = spec.name in HEAVY_COMMANDS
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
            return await asyncio.get_running_loop().run_in_executor(pool, _run, work)
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
            count = self.store.rebuild_index()
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
