"""BotService: the core's one entry point for adapters, the scheduler and the CLI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bot.commands import COMMANDS, Context, parse_text
from bot.config import Settings
from bot.delivery import DeliveryReport, Ledger, deliver_due
from bot.errors import IndexDamaged
from bot.messages import Invocation, Reply, error
from bot.ports import Outbox, PaperLookup
from bot.store import PaperStore

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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

    async def handle(self, inv: Invocation, *, offline: bool = False) -> Reply:
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
        ctx = Context(
            inv,
            self.store,
            self.settings,
            self.clock(),
            self.remote,
            offline,
            self.outbox,
            self.ledger,
        )
        try:
            return await spec.handler(ctx, args)
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
