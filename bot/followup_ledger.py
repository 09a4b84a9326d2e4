"""The follow-up ledger: a reply in a post's thread is claimed before it is posted, posted
once, and an unknown outcome is checked with the platform, never blindly resent.

The `followup` table is the delivery ledger's sibling (bot/ledger.py has the protocol), one
row per (channel, paper, kind, level), unique, so no instance and no crash can queue a second
reply for the same news. Kept apart from `Delivery` so digest selection, `/papers digest
resend`, the digest's unknown-post summary and its reconciliation never see replies.

A row moves: queued (written with the event cursor, bot/followups.py) -> claimed (taken by
one instance, with a lease) -> posting (the attempt, committed before the network call) ->
sent | queued again (a clear rejection, after its wait) | failed (final) | unknown (the
platform may have it: checked, like digests) | orphaned (the parent post is gone: no more
replies to it). Recovery: a claim whose owner died before posting is queued again; one that
died while posting is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select, update
from sqlmodel import Session

from bot.db import chunks, insert_ignore, writer
from bot.ledger_sql import take_due_rows
from bot.ledger_types import CHECK_AGAIN, CHECK_LEASE, STALE_AFTER
from bot.messages import is_direct_key
from bot.models import Channel, FollowUp, ReaderCursor
from bot.paper_events import EventCursor
from bot.ports import ABSENT, FOUND, LATER, RESEND, Reconciled
from bot.times import aware

_FU = FollowUp.__table__  # type: ignore[attr-defined]
_CHANNEL = Channel.__table__  # type: ignore[attr-defined]
_CURSOR = ReaderCursor.__table__  # type: ignore[attr-defined]

QUEUED, CLAIMED, POSTING, SENT = "queued", "claimed", "posting", "sent"
FAILED, UNKNOWN, ORPHANED, DROPPED = "failed", "unknown", "orphaned", "dropped"
MAX_AGE = timedelta(days=3)  # a queued reply not posted by then is stale news: never posted


def followup_key(row_id: int) -> str:
    """The idempotency key of a reply (Slack metadata, Discord nonce: <= 25 chars)."""
    return f"pb-fu-{row_id}"


@dataclass(slots=True)
class Taken:
    """One reply this instance holds: its row and what to say, in whose thread."""

    id: int
    channel_key: str
    paper_id: str
    kind: str
    level: int
    detail: str | None
    parent_ref: str
    lease: datetime
    attempts: int = 0

    @property
    def key(self) -> str:
        return followup_key(self.id)


_TAKEN = (
    _FU.c.id,
    _FU.c.channel_key,
    _FU.c.paper_id,
    _FU.c.kind,
    _FU.c.level,
    _FU.c.detail,
    _FU.c.parent_ref,
)


class FollowUpLedger:
    """The `followup` and `event_cursor` tables. Every write is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)

    # ------------------------------------------------------------------- cursor

    def cursor(self, reader: str) -> EventCursor:
        """Where `reader` is in the paper events (created at the start if absent)."""
        stmt = select(_CURSOR.c.mark, _CURSOR.c.event_id).where(_CURSOR.c.reader == reader)
        with Session(self.engine) as session:
            row = session.execute(stmt).first()
        if row is None:
            with Session(self._writer) as session, session.begin():
                session.execute(
                    insert_ignore(self.engine, _CURSOR),
                    [{"reader": reader, "mark": 0, "event_id": 0}],
                )
            with Session(self.engine) as session:
                row = session.execute(stmt).one()
        return EventCursor(int(row[0]), int(row[1]))

    def advance(
        self,
        reader: str,
        old: EventCursor,
        new: EventCursor,
        rows: Sequence[dict[str, Any]],
        now: datetime,
    ) -> int | None:
        """Move `reader` from `old` to `new` and queue `rows`, in ONE transaction; None when
        another instance moved the cursor first (then nothing is queued here). Returns how
        many rows were new."""
        with Session(self._writer) as session, session.begin():
            moved = session.execute(
                update(_CURSOR)
                .where(
                    _CURSOR.c.reader == reader,
                    _CURSOR.c.mark == old.mark,
                    _CURSOR.c.event_id == old.id,
                )
                .values(mark=new.mark, event_id=new.id, updated_at=now)
                .returning(_CURSOR.c.reader)
            ).first()
            if moved is None:
                return None
            added = 0
            postgres = self.engine.dialect.name == "postgresql"
            for part in chunks(list(rows), 5_000):
                if postgres:  # batched INSERT ... RETURNING: the rows this call added
                    stmt = insert_ignore(self.engine, _FU).returning(_FU.c.id)
                    added += len(session.execute(stmt, part).all())
                else:  # sqlite3's executemany sums its rowcount; RETURNING costs ~2x here
                    got = session.execute(insert_ignore(self.engine, _FU), part)
                    added += max(int(getattr(got, "rowcount", 0) or 0), 0)
        return added

    # ------------------------------------------------------------------ reading

    def held(self, paper_ids: Sequence[str]) -> dict[tuple[str, str, str], int]:
        """(channel, paper, kind) -> the highest level already queued or posted."""
        out: dict[tuple[str, str, str], int] = {}
        for part in chunks(sorted(set(paper_ids)), 1_000):
            stmt = (
                select(_FU.c.channel_key, _FU.c.paper_id, _FU.c.kind, func.max(_FU.c.level))
                .where(_FU.c.paper_id.in_(part))
                .group_by(_FU.c.channel_key, _FU.c.paper_id, _FU.c.kind)
            )
            with Session(self.engine) as session:
                for key, pid, kind, level in session.execute(stmt):
                    out[(key, pid, kind)] = int(level)
        return out

    def gone_parents(self) -> set[tuple[str, str]]:
        """(channel, parent ref) of posts found deleted: no more replies go there."""
        stmt = select(_FU.c.channel_key, _FU.c.parent_ref).where(_FU.c.status == ORPHANED)
        with Session(self.engine) as session:
            return {(key, ref) for key, ref in session.execute(stmt)}

    def statuses(self, channel_key: str) -> dict[tuple[str, str, int], str]:
        """(paper, kind, level) -> status, for one channel (tests, status pages)."""
        stmt = select(_FU.c.paper_id, _FU.c.kind, _FU.c.level, _FU.c.status).where(
            _FU.c.channel_key == channel_key
        )
        with Session(self.engine) as session:
            return {(p, k, lv): s for p, k, lv, s in session.execute(stmt)}

    def unknown_in(self, prefix: str, now: datetime) -> dict[str, int]:
        """Channel -> replies whose outcome is unknown and that the next ticks check with the
        platform (as `take_unknown` takes them: made in the last `MAX_AGE`, a check still to
        come, in channels with follow-ups on and not paused), for the channels whose keys
        start with `prefix` (a workspace: `slack:T123:`)."""
        stmt = (
            select(_FU.c.channel_key, func.count())
            .join(_CHANNEL, _CHANNEL.c.key == _FU.c.channel_key)
            .where(
                _FU.c.status == UNKNOWN,
                _FU.c.channel_key.startswith(prefix, autoescape=True),
                _FU.c.retry_at.is_not(None),
                _CHANNEL.c.paused_reason.is_(None),
                *_live(now),
            )
            .group_by(_FU.c.channel_key)
        )
        with Session(self.engine) as session:
            return {key: int(n) for key, n in session.execute(stmt)}

    def counts(self) -> dict[str, int]:
        stmt = select(_FU.c.status, func.count()).group_by(_FU.c.status)
        with Session(self.engine) as session:
            return {status: int(n) for status, n in session.execute(stmt)}

    # ------------------------------------------------------------------ posting

    def _take(
        self,
        status: str,
        now: datetime,
        platforms: Iterable[str] | None,
        limit: int,
        values: dict[str, Any],
    ) -> list[Taken]:
        """Rows in `status` that are due, in channels with follow-ups on and not paused, taken
        atomically (SKIP LOCKED on PostgreSQL, the status re-checked in the UPDATE)."""
        rows = take_due_rows(
            self._writer,
            _FU,
            status,
            now,
            platforms=platforms,
            limit=limit,
            values=values,
            returning=(*_TAKEN, _FU.c.attempts),
            where=_live(now),
        )
        # The lease is the claimed_at this call wrote (take_due); unknown rows keep theirs.
        return [
            Taken(r[0], r[1], r[2], r[3], r[4], r[5], r[6], lease=now, attempts=r[7])
            for r in sorted(rows)
        ]

    def take_due(
        self, now: datetime, platforms: Iterable[str] | None = None, limit: int = 200
    ) -> list[Taken]:
        """Queued replies whose time has come, claimed by this instance (lease = now)."""
        return self._take(
            QUEUED, now, platforms, limit, {"status": CLAIMED, "claimed_at": now, "retry_at": None}
        )

    def begin_attempt(self, taken: Taken) -> bool:
        """Committed before the post: the claim is still ours (lease unchanged)."""
        return self._set(
            taken.id,
            [_FU.c.status == CLAIMED, _FU.c.claimed_at == taken.lease],
            {"status": POSTING, "attempts": _FU.c.attempts + 1},
        )

    def sent(self, row_id: int, ref: str, now: datetime) -> None:
        values = {"status": SENT, "message_ref": ref, "sent_at": now, "error": None}
        self._set(row_id, [_FU.c.status.in_([POSTING, UNKNOWN])], values | {"retry_at": None})

    def rejected(self, row_id: int, error: str, retry_at: datetime | None) -> None:
        """A clear rejection: queued again after its wait, or failed for good (None)."""
        status = QUEUED if retry_at is not None else FAILED
        values = {"status": status, "error": error[:500], "retry_at": retry_at}
        self._set(row_id, [_FU.c.status == POSTING], values)

    def unknown(self, row_id: int, error: str, now: datetime) -> None:
        values = {"status": UNKNOWN, "error": error[:500], "retry_at": now}
        self._set(row_id, [_FU.c.status == POSTING], values)

    def orphaned(self, taken: Taken, error: str) -> None:
        """The parent post is gone: this reply failed, and nothing else queued for that post
        will be posted (wave2.md ST-3, DT-2)."""
        with Session(self._writer) as session, session.begin():
            session.execute(
                update(_FU)
                .where(_FU.c.id == taken.id, _FU.c.status == POSTING)
                .values(status=ORPHANED, error=error[:500], retry_at=None)
            )
            session.execute(
                update(_FU)
                .where(
                    _FU.c.channel_key == taken.channel_key,
                    _FU.c.parent_ref == taken.parent_ref,
                    _FU.c.status == QUEUED,
                )
                .values(status=DROPPED, error="the post this replied to was deleted")
            )

    def _set(self, row_id: int, conditions: list[Any], values: dict[str, Any]) -> bool:
        with Session(self._writer) as session, session.begin():
            got = session.execute(
                update(_FU)
                .where(_FU.c.id == row_id, *conditions)
                .values(**values)
                .returning(_FU.c.id)
            ).first()
        return got is not None

    # ----------------------------------------------------------------- recovery

    def recover_stale(self, now: datetime) -> tuple[int, int]:
        """Claims whose owner died: (queued again, now unknown)."""
        stale = _FU.c.claimed_at < now - STALE_AFTER
        with Session(self._writer) as session, session.begin():
            queued = session.execute(
                update(_FU)
                .where(_FU.c.status == CLAIMED, stale)
                .values(status=QUEUED, retry_at=now, error="claimed, never posted")
                .returning(_FU.c.id)
            ).all()
            unknown = session.execute(
                update(_FU)
                .where(_FU.c.status == POSTING, stale)
                .values(
                    status=UNKNOWN,
                    retry_at=now,
                    error="the process stopped while posting: the reply may exist",
                )
                .returning(_FU.c.id)
            ).all()
        return len(queued), len(unknown)

    def take_unknown(
        self, now: datetime, platforms: Iterable[str] | None = None, limit: int = 100
    ) -> list[Taken]:
        """Unknown replies due for a check, held for CHECK_LEASE by this instance."""
        return self._take(UNKNOWN, now, platforms, limit, {"retry_at": now + CHECK_LEASE})

    def settle(self, taken: Taken, result: Reconciled, now: datetime) -> bool:
        """What the platform said about an unknown reply. True when the row changed (for
        RESEND: it is now ours to post again, with the same key)."""
        return self._set(taken.id, [_FU.c.status == UNKNOWN], _settled(result, now))


def _settled(result: Reconciled, now: datetime) -> dict[str, Any]:
    if result.state == FOUND:
        return {"status": SENT, "message_ref": result.ref, "sent_at": now, "retry_at": None}
    if result.state == ABSENT:
        return {"status": QUEUED, "retry_at": now, "error": f"not in the thread ({result.note})"}
    if result.state == RESEND:
        return {"status": POSTING, "claimed_at": now, "attempts": _FU.c.attempts + 1}
    if result.state == LATER:
        return {"retry_at": now + CHECK_AGAIN}
    return {"retry_at": None, "error": f"outcome unknown, not checkable: {result.note}"[:500]}


def recent_posts(
    engine: Engine, paper_ids: Sequence[str], since: datetime
) -> list[tuple[str, str, str, datetime]]:
    """(channel, paper, message ref, sent at) of the posts that carried these papers since
    `since`, in channels with follow-ups on and not paused (indexed by paper); never a
    personal watch's direct message, which stays one message a day.

    Two plain reads, filtered here: the few channels that are off or paused, then the posts.
    A join with `channel` per post cost 3x the read itself (140k posts: 8 s instead of 2.5 s),
    and the status is checked here too: SQLite (no statistics) would otherwise pick
    ix_delivery_status (nearly every row is `sent`) over ix_delivery_paper and read the whole
    ledger."""
    from bot.models import Delivery

    table = Delivery.__table__  # type: ignore[attr-defined]
    off = select(_CHANNEL.c.key).where(
        or_(_CHANNEL.c.followups.is_(False), _CHANNEL.c.paused_reason.is_not(None))
    )
    with Session(engine) as session:
        skip = set(session.scalars(off))
    cols = (table.c.channel_key, table.c.paper_id, table.c.message_ref, table.c.sent_at)
    out: list[tuple[str, str, str, datetime]] = []
    for part in chunks(sorted(set(paper_ids)), 1_000):
        stmt = select(*cols, table.c.status).where(table.c.paper_id.in_(part))
        with Session(engine) as session:
            for key, pid, ref, at, status in session.execute(stmt):
                sent_at = aware(at)
                if (
                    status == "sent"
                    and ref
                    and sent_at
                    and sent_at >= since
                    and key not in skip
                    and not is_direct_key(key)  # a watch's DM: one message a day, no threads
                ):
                    out.append((key, pid, ref, sent_at))
    return out


def _live(now: datetime) -> tuple[Any, ...]:
    """Rows the ticks still work on: made in the last `MAX_AGE` (older news is stale), in
    channels with follow-ups on."""
    return (_FU.c.created_at >= now - MAX_AGE, _CHANNEL.c.followups.is_(True))
