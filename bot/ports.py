"""Interfaces of the core to the outside: adapters (and the outbox routing posts to them), and
remote paper lookups.

Adapters import from `bot` only `service`, `messages`, `ports`, `commands` (to register
commands) and `config` (tests/test_layering.py checks it): what else of the core they use is
exported here on purpose, so the seam stays one list.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot import redact
from bot.errors import ConfigError, DeliveryError
from bot.ids import ARXIV_ID_RE
from bot.messages import ChannelRef, Reply
from bot.models import PaperIn
from bot.reachability import NetworkOneLiner
from bot.retry_after import retry_after  # the one Retry-After reading, for every adapter

__all__ = [
    "ABSENT",
    "FOUND",
    "LATER",
    "RESEND",
    "UNCONFIRMED",
    "Adapter",
    "ConfigError",
    "DeliveryError",
    "Outbox",
    "PaperLookup",
    "Reconciled",
    "keep_secret",
    "one_line_when_unreachable",
    "paper_id",
    "retry_after",
]


def paper_id(value: object) -> str | None:
    """A button's payload when it is exactly one arXiv id (`2305.18290`, `hep-th/9901001`,
    with or without a version), as the store's key; None for anything else. Payloads come
    back from the platform and are checked like any user text before they become a command."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    match = ARXIV_ID_RE.fullmatch(value)
    if match is None:
        return None
    return match.group("new") or match.group("old")


def keep_secret(*values: str | None) -> None:
    """Never write these values (tokens, signing secrets) into a log line."""
    redact.install()
    redact.add_secrets(values)


def one_line_when_unreachable(log: logging.Logger | logging.Handler, platform: str) -> None:
    """A record from `log` carrying a network failure becomes one line ("cannot reach Slack
    (DNS): reconnecting") instead of a traceback per reconnect attempt."""
    log.addFilter(NetworkOneLiner(platform))


@runtime_checkable
class Adapter(Protocol):
    """A platform. Inbound traffic is the adapter calling `BotService.handle`. `start` raises
    `ConfigError` for what retrying cannot fix (a rejected token).

    `send` posts a reply into a channel and returns the platform's message reference. It
    raises `DeliveryError` (ambiguous / retry_after / gone) and nothing else. The
    `idempotency_key` goes with the post (Slack: message metadata; Discord: the nonce) so an
    ambiguous outcome can be reconciled later.
    """

    platform: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str: ...


# What a platform can tell about a post whose outcome is unknown (`Adapter.reconcile`, optional):
FOUND = "found"  # the post is there: `ref` is its message reference
ABSENT = "absent"  # certainly not there: post it again
RESEND = "resend"  # post it again with the same idempotency key: the platform dedupes it
LATER = "later"  # cannot check now (rate limit, outage): ask again later
UNCONFIRMED = "unconfirmed"  # cannot be known: an operator decides


@dataclass(frozen=True, slots=True)
class Reconciled:
    state: str
    ref: str | None = None
    note: str = ""


class Outbox:
    """Routes a post to the adapter of the channel's platform. The composition root makes it
    first (the service posts through it) and adds each adapter once built (adapters need the
    service): a platform with no adapter here is "not running", which the ledger retries."""

    def __init__(self, adapters: Mapping[str, Adapter] | None = None) -> None:
        self.adapters = dict(adapters or {})

    def add(self, adapter: Adapter) -> None:
        self.adapters[adapter.platform] = adapter

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        adapter = self.adapters.get(channel.platform)
        if adapter is None:
            # Not ambiguous: nothing was sent. The platform may come up on another instance.
            raise DeliveryError(f"no {channel.platform} adapter is running", retry_after=60)
        return await adapter.send(channel, reply, idempotency_key=idempotency_key)

    async def reconcile(
        self,
        channel: ChannelRef,
        idempotency_key: str,
        *,
        posted_at: datetime,
        now: datetime,
        attempts: int,
        thread_of: str | None = None,
    ) -> Reconciled:
        """Ask the channel's platform whether an unknown post landed. An adapter may offer
        `reconcile(channel, idempotency_key, posted_at=, now=, attempts=[, thread_of=])
        -> Reconciled` (Slack: the channel's history, or the thread's replies for a reply in
        the thread of `thread_of`; Discord: a resend with the same nonce)."""
        adapter = self.adapters.get(channel.platform)
        if adapter is None:
            return Reconciled(LATER, note=f"no {channel.platform} adapter is running here")
        check = getattr(adapter, "reconcile", None)
        if check is None:
            return Reconciled(UNCONFIRMED, note=f"{channel.platform} posts cannot be checked")
        extra = {} if thread_of is None else {"thread_of": thread_of}
        result: Reconciled = await check(
            channel, idempotency_key, posted_at=posted_at, now=now, attempts=attempts, **extra
        )
        return result


class PaperLookup(Protocol):
    """Remote paper sources asked on demand (a paper not in the store, too few local hits).

    Both calls use the network: handlers call them only inside a `Later`, after the adapter
    acked the platform (`messages.Pending`).
    They raise `SourceError` when the source fails.
    """

    async def lookup_paper(self, paper_id: str) -> PaperIn | None: ...

    async def search_remote(self, query: str, limit: int) -> list[PaperIn]: ...
