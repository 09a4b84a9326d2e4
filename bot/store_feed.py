"""The store's change feed and the index that follows it: which changes are committed for good
(`feed_bound`), reading them in mark order (`changes`), and catching the index up
(`sync_index`, `rebuild_index`). Part of `bot.store.PaperStore` (mixed in); the protocol is in
docs/pipeline.md and the store's docstring.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, text, tuple_
from sqlmodel import Session

from bot.models import Paper

if TYPE_CHECKING:
    from bot.index import PaperIndex

FEED_PAGE = 5_000  # changes read per query when catching an index up


class IndexFeed:
    """The change feed and index catch-up (mixed into `PaperStore`)."""

    engine: Engine
    index: PaperIndex | None
    _postgres: bool
    _feed_lock: threading.RLock
    _generation: int

    def feed_bound(self) -> int:
        """Every change with a mark below this is committed (or rolled back) for good; a
        transaction still running, or starting later, writes marks at or above it."""
        if self._postgres:
            return self._pg_feed_bound()
        sql = "SELECT coalesce(max(change_seq), 0) + 1 FROM paper"
        with Session(self.engine) as session:
            return int(session.execute(text(sql)).scalar_one())

    def _pg_feed_bound(self) -> int:
        """The oldest transaction still running in this database, else the snapshot's xmax.

        Only a transaction of this database can write a mark, so a write left open in another
        database of a shared server (whose xids count in the snapshot's xmin) must not stall
        the feed. The statement's snapshot is taken before `pg_stat_activity` is read, so a
        transaction below its xmax that is still running is listed. Activity gives 32-bit xids:
        each is widened against the snapshot's xmin (running xids lie within 2**31 above it).
        """
        with Session(self.engine) as session:
            xmin, xmax, running = session.execute(text(_PG_FEED_BOUND)).one()
        wide = [xmin + (int(x) - xmin) % 2**32 for x in running or ()]
        return int(min([int(xmax), *wide]))

    def changes(
        self, after: tuple[int, str], bound: int, skip: Sequence[int] = (), limit: int = 0
    ) -> list[dict[str, Any]]:
        """Papers whose (change_seq, id) is past `after` and whose mark is below `bound`,
        in that order, leaving out the marks in `skip` (changes the index applied itself);
        at most `limit` (`FEED_PAGE` when 0, read at call time)."""
        table = Paper.__table__  # type: ignore[attr-defined]
        stmt = (
            select(table)
            .where(
                tuple_(table.c.change_seq, table.c.id) > tuple_(after[0], after[1]),
                table.c.change_seq < bound,
            )
            .order_by(table.c.change_seq, table.c.id)
            .limit(limit or FEED_PAGE)
        )
        if skip:
            stmt = stmt.where(table.c.change_seq.not_in(list(skip)))
        with Session(self.engine) as session:
            return [dict(row) for row in session.execute(stmt).mappings()]

    def search_index(self) -> PaperIndex:
        """The index searches read: the one this store was given, else an in-memory one the
        store builds from its own papers on first use (small stores of tests and scripts;
        `runtime` gives a real one) and keeps up to date from then on."""
        if self.index is None:
            from bot.index import PaperIndex

            self.index = PaperIndex(None)
            self.sync_index()
        return self.index

    def sync_index(self, *, rebuild: bool = False) -> int:
        """Bring the index up to the store: everything if `rebuild`, else what changed since
        its position in the change feed. Returns how many papers were (re)indexed.

        Work is proportional to the changes: a paper changed twice is read once, in its
        latest state, and changes this process indexed as it wrote them are not read again.
        The count leaves out changes applied ahead of the bound (`_peek`).
        """
        index = self.index
        if index is None:
            return 0
        if rebuild:
            self._empty_index(index.clear)
        generation = self._generation
        bound = self.feed_bound()
        done = 0
        # The marks this index applied itself split the range into stretches read one by one
        # (an index range scan each); a mark right at the position costs no query at all, as
        # after this process's own import on SQLite, whose marks follow each other.
        start = index.position()[0]
        own = sorted(m for m in index.own_marks() if start <= m < bound)
        for stop, skip in [*((m, True) for m in own), (bound, False)]:
            while (rows := self._apply_page(index, generation, stop)) is not None:
                done += rows
            with self._feed_lock:
                if self._generation != generation:
                    return done  # emptied meanwhile: the rebuild that did it refills it
                index.advance(stop + 1 if skip else stop)  # an own mark: its rows are applied
        self._peek(index, bound, generation)
        index.flush()
        return done

    def rebuild_index(self) -> int:
        """Recreate the index empty (its files were damaged) and refill it from the store."""
        if self.index is None:
            return 0
        self._empty_index(self.index.recreate)
        return self.sync_index()

    def _empty_index(self, empty: Callable[[], None]) -> None:
        """Empty the index under the feed lock, and tell catch-ups running meanwhile to stop:
        one could otherwise apply a page read before and move the new position past papers
        the refill has not applied yet."""
        with self._feed_lock:
            empty()
            self._generation += 1

    def _apply_page(self, index: PaperIndex, generation: int, stop: int) -> int | None:
        """Apply the next page of changes below `stop`: how many, or None when done."""
        with self._feed_lock:
            if self._generation != generation or index.position() >= (stop, ""):
                return None
            rows = self.changes(index.position(), stop)
            if not rows:
                return None
            last = rows[-1]
            index.upsert(rows, position=(int(last["change_seq"]), str(last["id"])))
            return len(rows)

    def _peek(self, index: PaperIndex, bound: int, generation: int) -> None:
        """Apply the committed changes at or above the bound now, without moving past it.

        On PostgreSQL the bound waits for the oldest transaction still writing in the
        database; changes committed meanwhile need not wait to be searchable. They are read
        again, once, when the bound passes them (a change of an older transaction may still
        commit below them). On SQLite there is nothing above the bound.
        """
        if not self._postgres:
            return
        after = (bound, "")
        while True:
            with self._feed_lock:
                if self._generation != generation:
                    return
                rows = self.changes(after, 2**63 - 1, sorted(index.own_marks()))
                if not rows:
                    return
                index.upsert(rows)
            after = (int(rows[-1]["change_seq"]), str(rows[-1]["id"]))


_PG_FEED_BOUND = """
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
       pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
       (SELECT array_agg(backend_xid::text::bigint) FROM pg_stat_activity
        WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND backend_xid IS NOT NULL AND pid <> pg_backend_pid())
"""
