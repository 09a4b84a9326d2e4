"""The store's freshness rows: paper events in commit order, and which recent papers a
refresh should ask a source about again. Part of `bot.store.PaperStore` (mixed in).

Events carry the change-feed mark of the transaction that wrote them, so they are read the
way the index reads papers (docs/pipeline.md): past the reader's (mark, id) and below the
feed's bound, below which no transaction can still commit. A reader never skips an event a
slow transaction commits late, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, tuple_, update
from sqlmodel import Session

from bot.db import chunks
from bot.models import Paper, PaperEvent
from bot.paper_events import EventCursor, EventPage, PaperEventOut
from bot.times import aware

_EVENT = PaperEvent.__table__  # type: ignore[attr-defined]
_PAPER = Paper.__table__  # type: ignore[attr-defined]
# Which column says when each source was last asked about one paper.
CHECKED = {"hf": "hf_checked_at", "arxiv": "arxiv_checked_at"}


class FreshRows:
    """Paper events and recheck bookkeeping (mixed into `PaperStore`)."""

    engine: Engine
    _writer: Engine

    def feed_bound(self) -> int:
        raise NotImplementedError  # IndexFeed's (bot.store_feed), before this in the MRO

    def events_since(self, after: EventCursor, limit: int = 500) -> EventPage:
        """Events past `after` in commit order, at most `limit`, and the cursor to pass next.

        A page shorter than `limit` means "caught up": its cursor moves to the feed's bound,
        so an empty read costs one indexed query next time too."""
        bound = self.feed_bound()
        stmt = (
            select(_EVENT)
            .where(
                tuple_(_EVENT.c.mark, _EVENT.c.id) > tuple_(after.mark, after.id),
                _EVENT.c.mark < bound,
            )
            .order_by(_EVENT.c.mark, _EVENT.c.id)
            .limit(max(1, limit))
        )
        with Session(self.engine) as session:
            rows = session.execute(stmt).mappings().all()
        events = [_event(row) for row in rows]
        if len(events) >= limit:
            last = events[-1]
            return EventPage(events, EventCursor(last.mark, last.id))
        return EventPage(events, max(after, EventCursor(bound, 0)))

    def prune_events(self, before: datetime) -> int:
        """Delete the events recorded before `before` (an index range scan); how many."""
        with Session(self._writer) as session, session.begin():
            result = session.execute(delete(_EVENT).where(_EVENT.c.at < before))
        return int(getattr(result, "rowcount", 0) or 0)

    def recheck_candidates(
        self, source: str, since: datetime, limit: int, first: Sequence[str] = ()
    ) -> list[str]:
        """Up to `limit` ids of papers announced since `since` for `source` to be asked about
        again: `first` (known ones only, in that order), then the ones asked longest ago
        (never asked first), newest announcement first among equals."""
        if limit <= 0:
            return []
        column = _PAPER.c[CHECKED[source]]
        chosen: list[str] = []
        with Session(self.engine) as session:
            for part in chunks(list(dict.fromkeys(first)), 500):
                found = set(session.scalars(select(_PAPER.c.id).where(_PAPER.c.id.in_(part))))
                chosen += [pid for pid in part if pid in found]
            chosen = chosen[:limit]
            stmt = (
                select(_PAPER.c.id)
                .where(_PAPER.c.announced_at >= since)
                .order_by(column.is_not(None), column, _PAPER.c.announced_at.desc())
                .limit(limit + len(chosen))
            )
            for pid in session.scalars(stmt):
                if len(chosen) >= limit:
                    break
                if pid not in chosen:
                    chosen.append(pid)
        return chosen

    def mark_checked(self, source: str, ids: Sequence[str], now: datetime) -> None:
        """Record that `source` was asked about these papers at `now`. Not paper data: the
        change feed does not move (the index has nothing new to read)."""
        column = CHECKED[source]
        with Session(self._writer) as session, session.begin():
            for part in chunks(list(ids), 500):
                session.execute(update(_PAPER).where(_PAPER.c.id.in_(part)).values({column: now}))

    def checked_at(self, source: str, paper_id: str) -> datetime | None:
        """When `source` was last asked about this paper (None: never)."""
        column = _PAPER.c[CHECKED[source]]
        with Session(self.engine) as session:
            value = session.execute(
                select(column).where(_PAPER.c.id == paper_id)
            ).scalar_one_or_none()
        return aware(value)


def write_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert event rows inside the caller's (the merge's) transaction."""
    if rows:
        session.execute(_EVENT.insert(), rows)


def _event(row: Any) -> PaperEventOut:
    at = aware(row["at"])
    assert at is not None
    return PaperEventOut(
        id=int(row["id"]),
        paper_id=row["paper_id"],
        kind=row["kind"],
        old=row["old"],
        new=row["new"],
        at=at,
        mark=int(row["mark"]),
    )
