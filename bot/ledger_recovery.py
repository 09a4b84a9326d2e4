"""The ledger's recovery: claims whose owner died, rejected posts due for a retry, and posts
whose outcome is unknown (checked with the platform, else shown to an operator).

Part of `bot.ledger.Ledger` (steps 4-5 of its protocol).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, and_, func, select, update
from sqlmodel import Session

from bot.ledger_sql import take_due_rows, update_papers
from bot.ledger_types import (
    CHECK_AGAIN,
    CHECK_LEASE,
    CLAIMED,
    FAILED,
    SENT,
    STALE_AFTER,
    UNKNOWN,
    Outgoing,
    UnknownPost,
    UnknownSummary,
)
from bot.models import Delivery
from bot.ports import ABSENT, FOUND, LATER, RESEND, Reconciled
from bot.times import aware

logger = logging.getLogger(__name__)

_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]


class Recovered(NamedTuple):
    unknown: int  # had started posting: the post may exist
    queued: int  # had not: retried like a clear rejection


class LedgerRecovery:
    """Retries, recovery and unknown outcomes (mixed into `bot.ledger.Ledger`)."""

    engine: Engine
    _writer: Engine

    def finish_run(self, run_id: int | None, status: str, papers: int, now: datetime) -> None:
        raise NotImplementedError  # bot.ledger.Ledger

    def recover_stale(self, now: datetime) -> Recovered:
        """Step 5: claims whose owner died: now unknown, or queued for a retry."""
        cutoff = now - STALE_AFTER
        stale = and_(_DELIVERY.c.status == CLAIMED, _DELIVERY.c.claimed_at < cutoff)
        with Session(self._writer) as session, session.begin():
            unknown = session.execute(
                update(_DELIVERY)
                .where(stale, _DELIVERY.c.attempts > 0)
                .values(
                    status=UNKNOWN,
                    error="the process stopped while posting: the post may exist; not re-posted",
                    retry_at=now,  # checked with the platform by `reconcile_unknown`
                )
                .returning(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id)
            ).all()
            queued = session.execute(
                update(_DELIVERY)
                .where(stale, _DELIVERY.c.attempts == 0)
                .values(status=FAILED, retry_at=now, error="claimed, never posted")
                .returning(_DELIVERY.c.id)
            ).all()
        for key, pid in unknown:
            logger.warning("delivery of %s to %s is UNKNOWN (owner died mid-post)", pid, key)
        return Recovered(len(unknown), len(queued))

    def _take_due(
        self,
        status: str,
        now: datetime,
        platforms: Iterable[str] | None,
        limit: int,
        values: dict[str, Any],
        *extra: Any,
    ) -> Sequence[Any]:
        """Take the rows in `status` whose `retry_at` has come, in unpaused channels (of
        `platforms` only, when given), setting `values`, in one transaction: SKIP LOCKED on
        PostgreSQL and the status re-checked in the UPDATE, so two instances take disjoint
        sets. Returns (id, channel_key, paper_id, digest_run_id, idempotency_key, *extra)."""
        returning = (
            _DELIVERY.c.id,
            _DELIVERY.c.channel_key,
            _DELIVERY.c.paper_id,
            _DELIVERY.c.digest_run_id,
            _DELIVERY.c.idempotency_key,
            *extra,
        )
        return take_due_rows(
            self._writer,
            _DELIVERY,
            status,
            now,
            platforms=platforms,
            limit=limit,
            values=values,
            returning=returning,
        )

    def take_retries(
        self, now: datetime, platforms: Iterable[str] | None = None, limit: int = 2_000
    ) -> list[Outgoing]:
        """Failed papers whose wait is over, taken atomically (SKIP LOCKED on PostgreSQL, a
        conditional UPDATE everywhere) and grouped back into their digests. `platforms`:
        only channels this instance can post to."""
        rows = self._take_due(
            FAILED,
            now,
            platforms,
            limit,
            {
                "status": CLAIMED,
                "claimed_at": now,
                "retry_at": None,
                "attempts": _DELIVERY.c.attempts + 1,
            },
        )
        groups: dict[tuple[str, int | None, str | None], list[tuple[int, str]]] = defaultdict(list)
        for row_id, key, pid, run_id, idem in rows:
            groups[(key, run_id, idem)].append((row_id, pid))
        return [
            Outgoing(
                run_id=run_id,
                channel_key=key,
                reply=None,  # built by `deliver_due` from the store
                paper_ids=[pid for _, pid in sorted(items)],
                idempotency_key=idem or f"pb-retry-{items[0][0]}",
                lease=now,
                retry=True,
            )
            for (key, run_id, idem), items in groups.items()
        ]

    # ------------------------------------------------------------- unknown outcomes

    def take_unknown(
        self, now: datetime, platforms: Iterable[str] | None = None, limit: int = 200
    ) -> list[UnknownPost]:
        """Unknown posts due for a check, taken for CHECK_LEASE (another instance does not
        check them meanwhile; if this one dies, they come due again)."""
        rows = self._take_due(
            UNKNOWN,
            now,
            platforms,
            limit,
            {"retry_at": now + CHECK_LEASE},
            _DELIVERY.c.claimed_at,
            _DELIVERY.c.attempts,
        )
        groups: dict[tuple[str, int | None, str], UnknownPost] = {}
        for row_id, key, pid, run_id, idem, claimed_at, attempts in sorted(rows):
            idem = idem or f"pb-retry-{row_id}"
            post = groups.get((key, run_id, idem))
            if post is None:
                post = groups[(key, run_id, idem)] = UnknownPost(
                    key, run_id, idem, [], aware(claimed_at) or now, attempts or 0
                )
            post.paper_ids.append(pid)
            post.attempts = max(post.attempts, attempts or 0)
        return list(groups.values())

    def settle_unknown(self, post: UnknownPost, result: Reconciled, now: datetime) -> list[str]:
        """Apply what the platform said about an unknown post; returns the papers changed
        (for RESEND: the papers now claimed again for the resend)."""
        values = _settled_values(result, now)
        with Session(self._writer) as session, session.begin():
            changed = update_papers(
                session, post.channel_key, post.paper_ids, [_DELIVERY.c.status == UNKNOWN], values
            )
        if result.state == FOUND and changed:
            self.finish_run(post.run_id, "done", len(changed), now)
        return changed

    def requeue_unknown(self, channel_key: str, now: datetime) -> int:
        """An operator's call (`/papers digest resend`): this channel's unknown papers are
        posted again on the next tick. Returns how many."""
        with Session(self._writer) as session, session.begin():
            got = session.execute(
                update(_DELIVERY)
                .where(_DELIVERY.c.channel_key == channel_key, _DELIVERY.c.status == UNKNOWN)
                .values(
                    status=FAILED,
                    retry_at=now,
                    error="outcome was unknown; posted again on an operator's request",
                )
                .returning(_DELIVERY.c.id)
            ).all()
        return len(got)

    def unknown_summary(
        self, channel_key: str | None = None, *, prefix: str | None = None
    ) -> UnknownSummary:
        """Unknown deliveries (one channel, the channels whose key starts with `prefix` (a
        workspace), or all): papers, posts, still being checked."""
        stmt = (
            select(
                _DELIVERY.c.channel_key,
                _DELIVERY.c.idempotency_key,
                _DELIVERY.c.retry_at.is_not(None),
                func.count(),
            )
            .where(_DELIVERY.c.status == UNKNOWN)
            .group_by(
                _DELIVERY.c.channel_key,
                _DELIVERY.c.idempotency_key,
                _DELIVERY.c.retry_at.is_not(None),
            )
        )
        if channel_key is not None:
            stmt = stmt.where(_DELIVERY.c.channel_key == channel_key)
        if prefix is not None:
            stmt = stmt.where(_DELIVERY.c.channel_key.startswith(prefix, autoescape=True))
        summary = UnknownSummary()
        posts: set[tuple[str, str | None]] = set()
        channels: set[str] = set()
        with Session(self.engine) as session:
            for key, idem, checking, n in session.execute(stmt).all():
                summary.papers += int(n)
                if checking:
                    summary.checking += int(n)
                posts.add((key, idem))
                channels.add(key)
        summary.posts, summary.channels = len(posts), sorted(channels)
        return summary


def _settled_values(result: Reconciled, now: datetime) -> dict[str, object]:
    """The delivery row's new values for what the platform said about an unknown post."""
    values: dict[str, object]
    if result.state == FOUND:
        values = {
            "status": SENT,
            "message_ref": result.ref,
            "sent_at": now,
            "error": None,
            "retry_at": None,
        }
    elif result.state == ABSENT:
        values = {
            "status": FAILED,
            "retry_at": now,
            "error": f"not found in the channel ({result.note}): posted again",
        }
    elif result.state == RESEND:
        values = {
            "status": CLAIMED,
            "claimed_at": now,
            "retry_at": None,
            "attempts": _DELIVERY.c.attempts + 1,
        }
    elif result.state == LATER:
        values = {"retry_at": now + CHECK_AGAIN}
    else:
        values = {
            "retry_at": None,
            "error": f"outcome unknown, could not be checked: {result.note}"[:500],
        }
    return values
