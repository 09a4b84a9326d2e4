"""The delivery ledger: never the same paper twice in a channel, nothing silently lost.

DESIGN.md (Delivery) and platforms.md R-3, on SQLite and on PostgreSQL alike:

1. `DigestRun(channel, slot)` is inserted first (insert-if-absent). No row back means another
   instance, or an earlier run of this one, owns the slot: stop.
2. In the SAME transaction every paper is claimed in `Delivery(channel, paper)` with an
   insert-if-absent (`ON CONFLICT DO NOTHING RETURNING`), and the channel's schedule moves on.
   It commits before any network call; only papers whose claim came back go into the post.
3. Right before the post the claimed rows count an attempt (a committed compare-and-set on
   the claim's lease time, so a row taken over meanwhile is not posted by its old owner).
4. The post: success -> `sent` + message reference. `DeliveryError(retry_after=...)` or
   another clear rejection -> `failed` with `retry_at`; a later tick re-posts those papers
   honouring the wait. `DeliveryError(ambiguous=True)` (or anything unexpected) -> `unknown`,
   never re-posted blindly: `reconcile_unknown` asks the platform (Slack: the channel's
   history for the post's metadata; Discord: a resend with the same nonce inside its dedupe
   window), else the row stays `unknown` for an operator (`/papers status`, `/papers digest
   resend`). On an `unknown` row `retry_at` is when to check it; NULL once nobody can.
   `DeliveryError(gone=True)` -> `failed` for good, and the channel is paused
   (`Channel.paused_reason`, shown by `/papers list` and `/papers status`).
5. Recovery: a claim older than `STALE_AFTER` is an owner that died. If it had started its
   attempt the post may have been written: `unknown`. If not, nothing was sent: it is queued
   for a retry like a clear rejection.

Everything that decides who posts rests on the unique constraints, so every process may run
the tick (several instances share PostgreSQL; SQLite is one process per host).
A digest Reply larger than a platform allows is the adapter's job to split; the ledger works
per paper, and one digest is one `Outbox.send` with one idempotency key.

Here: claims, runs, attempts and outcomes. Retries, recovery and unknown outcomes are in
bot/ledger_recovery.py, the per-database bulk statements in bot/ledger_sql.py, the types in
bot/ledger_types.py; the tick that drives all of it is bot/delivery.py.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from bot.db import chunks, insert_ignore, writer
from bot.ledger_recovery import LedgerRecovery
from bot.ledger_sql import claim_papers, insert_runs, update_papers
from bot.ledger_types import (
    CHECK_AGAIN,
    CHECK_LEASE,
    CLAIMED,
    FAILED,
    SENT,
    STALE_AFTER,
    UNKNOWN,
    Claim,
    Outgoing,
    OwnedRun,
    RunRequest,
    UnknownPost,
    UnknownSummary,
    digest_key,
)
from bot.models import Delivery, DigestRun
from bot.store_rows import ScheduleMove, advance_schedules

__all__ = [
    "CHECK_AGAIN",
    "CHECK_LEASE",
    "CLAIMED",
    "FAILED",
    "SENT",
    "STALE_AFTER",
    "UNKNOWN",
    "Ledger",
    "Outgoing",
    "OwnedRun",
    "RunRequest",
    "UnknownPost",
    "UnknownSummary",
    "digest_key",
]

_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_RUN = DigestRun.__table__  # type: ignore[attr-defined]


class Ledger(LedgerRecovery):
    """The Delivery and DigestRun tables. Every write is one short transaction."""

    def __init__(self, engine: Engine, instance_id: str | None = None) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self.instance_id = instance_id or uuid.uuid4().hex[:12]

    # --------------------------------------------------------------------- claims

    def claim(self, channel_key: str, paper_id: str, now: datetime) -> bool:
        """Claim one paper for one channel; True for exactly one caller, ever."""
        with Session(self._writer) as session, session.begin():
            got = session.execute(
                insert_ignore(self.engine, _DELIVERY).returning(_DELIVERY.c.id),
                [
                    {
                        "channel_key": channel_key,
                        "paper_id": paper_id,
                        "status": CLAIMED,
                        "attempts": 0,
                        "claimed_at": now,
                    }
                ],
            ).first()
        return got is not None

    def delivered(
        self, channel_keys: Sequence[str], since: datetime | None = None
    ) -> dict[str, set[str]]:
        """Papers already in the ledger (any status) per channel: never selected again.

        With `since` only claims made since then are read: a paper announced after `since`
        cannot have been claimed before it (and the unique constraint still refuses any
        older duplicate at claim time).
        """
        out: dict[str, set[str]] = defaultdict(set)
        wanted = set(channel_keys)
        if since is not None and len(wanted) > 1_000:
            # Many channels: every recent claim at once (indexed), filtered here.
            stmt = select(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id).where(
                _DELIVERY.c.claimed_at >= since
            )
            with Session(self.engine) as session:
                for key, pid in session.execute(stmt):
                    if key in wanted:
                        out[key].add(pid)
            return out
        for chunk in chunks(sorted(wanted), 1_000):
            stmt = select(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id).where(
                _DELIVERY.c.channel_key.in_(chunk)
            )
            if since is not None:
                stmt = stmt.where(_DELIVERY.c.claimed_at >= since)
            with Session(self.engine) as session:
                for key, pid in session.execute(stmt):
                    out[key].add(pid)
        return out

    def open_runs(
        self,
        runs: Sequence[RunRequest],
        now: datetime,
        *,
        advance: Mapping[str, datetime | None] | None = None,
        scheduled: bool = True,
    ) -> dict[str, OwnedRun]:
        """Steps 1-2 for many channels in ONE transaction; returns the runs this call owns.

        `advance`: channel -> its next slot, moved on in the same transaction (by the store:
        `advance_schedules`); owned scheduled runs also set `last_digest_at` to their slot,
        where the next window starts.
        """
        owned: dict[str, OwnedRun] = {}
        nexts = dict(advance or {})
        with Session(self._writer) as session, session.begin():
            if runs:
                got = insert_runs(session, runs, now, self.instance_id)
                claims = [
                    Claim(r.channel_key, pid, got[r.channel_key])
                    for r in runs
                    if r.channel_key in got
                    for pid in r.paper_ids
                ]
                won = claim_papers(session, claims, got, now)
                for r in runs:
                    if r.channel_key in got:
                        owned[r.channel_key] = OwnedRun(
                            got[r.channel_key], [p for p in r.paper_ids if p in won[r.channel_key]]
                        )
            moves = [
                ScheduleMove(
                    r.channel_key,
                    r.slot if scheduled and r.channel_key in owned else None,
                    nexts.pop(r.channel_key),
                )
                for r in runs
                if r.channel_key in nexts
            ]
            moves += [ScheduleMove(key, None, nxt) for key, nxt in nexts.items()]
            if moves:
                advance_schedules(session, moves)
        return owned

    def begin_attempt(self, out: Outgoing) -> list[str]:
        """Step 3: count the attempt of the claims still ours (lease unchanged); committed
        before the post. Returns the papers that may be posted."""
        if not out.paper_ids:
            return []
        conditions = [
            _DELIVERY.c.status == CLAIMED,
            _DELIVERY.c.claimed_at == out.lease,
            _DELIVERY.c.attempts == 0,
        ]
        with Session(self._writer) as session, session.begin():
            return update_papers(
                session,
                out.channel_key,
                out.paper_ids,
                conditions,
                {"attempts": _DELIVERY.c.attempts + 1},
            )

    def mark(
        self,
        channel_key: str,
        paper_ids: Sequence[str],
        status: str,
        now: datetime,
        *,
        message_ref: str | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Step 4: the outcome of a post for its papers."""
        if not paper_ids:
            return
        values: dict[str, object] = {"status": status, "retry_at": retry_at, "error": error}
        if status == SENT:
            values.update(message_ref=message_ref, sent_at=now, error=None)
        # A post confirmed late still wins over a recovery's `unknown`.
        owned = [CLAIMED, UNKNOWN] if status == SENT else [CLAIMED]
        with Session(self._writer) as session, session.begin():
            update_papers(session, channel_key, paper_ids, [_DELIVERY.c.status.in_(owned)], values)

    def finish_run(self, run_id: int | None, status: str, papers: int, now: datetime) -> None:
        if run_id is None:
            return
        with Session(self._writer) as session, session.begin():
            session.execute(
                update(_RUN)
                .where(_RUN.c.id == run_id)
                .values(status=status, papers=papers, finished_at=now)
            )

    # ------------------------------------------------------------------- reading

    def statuses(self, channel_key: str) -> dict[str, str]:
        """paper id -> status, for one channel (status pages and tests)."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(_DELIVERY.c.paper_id, _DELIVERY.c.status).where(
                    _DELIVERY.c.channel_key == channel_key
                )
            ).all()
        return {pid: status for pid, status in rows}

    def counts(self, channel_key: str | None = None) -> dict[str, int]:
        stmt = select(_DELIVERY.c.status, func.count()).group_by(_DELIVERY.c.status)
        if channel_key is not None:
            stmt = stmt.where(_DELIVERY.c.channel_key == channel_key)
        with Session(self.engine) as session:
            return {status: int(n) for status, n in session.execute(stmt).all()}

    def attempts(self, channel_key: str, papers: Sequence[str]) -> int:
        """The most attempts any of these papers' posts made in this channel."""
        if not papers:
            return 0
        with Session(self.engine) as session:
            value = session.execute(
                select(func.max(_DELIVERY.c.attempts)).where(
                    _DELIVERY.c.channel_key == channel_key,
                    _DELIVERY.c.paper_id.in_(list(papers)),
                )
            ).scalar_one()
        return int(value or 0)
