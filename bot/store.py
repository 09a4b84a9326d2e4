"""PaperStore: the one place that writes papers, channels and subscriptions.

The SQL database is the source of truth. The full-text index (`bot.index.PaperIndex`) follows
it through an exact change feed (docs/pipeline.md): every paper change carries a mark written in
the same transaction (`change_seq`), and `sync_index` reads changes past the index's position
in mark order, only up to a bound below which no transaction can still commit. An upsert here
also updates this process's index right after its transaction commits, and tells the index
its mark, so the next catch-up skips what it already applied.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, String, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError
from sqlmodel import Session, col

from bot.aliases import mine_aliases
from bot.db import upsert_stmt, writer
from bot.models import Alias, Paper, PaperIn, PaperText
from bot.paper_events import event_rows
from bot.paper_in import Rejected, clean_paper
from bot.paper_rows import BulkInsert, Row, merge_into, merged_row, new_row
from bot.store_feed import IndexFeed
from bot.store_fresh import FreshRows, write_events
from bot.store_rows import ChatRows, _one

if TYPE_CHECKING:
    from bot.index import PaperIndex

logger = logging.getLogger(__name__)

BATCH = 2_000
LOG_SKIPS = 20  # refused papers logged one by one per call; the rest are counted


# Statements a search runs every time, built once: building one costs SQLAlchemy more than
# reading a few papers (`get_many`: whole rows; `texts`: their words).
_BY_ID = select(Paper).where(col(Paper.id).in_(bindparam("ids", expanding=True)))
_TEXTS = (
    text(f"SELECT id, title, abstract FROM {Paper.__tablename__} WHERE id IN :ids")
    .bindparams(bindparam("ids", expanding=True))
    .columns(id=String, title=String, abstract=String)
)


@dataclass(frozen=True, slots=True)
class _Write:  # what one `upsert_many` call writes with every batch
    now: datetime
    announced_at: datetime | None
    events: bool


@dataclass
class UpsertResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Rejected] = field(default_factory=list)  # records the store could not take

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        return self


class PaperStore(ChatRows, IndexFeed, FreshRows):
    def __init__(self, engine: Engine, index: PaperIndex | None = None) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self.index = index
        self._aliases: dict[str, list[str]] | None = None
        self._postgres = engine.dialect.name == "postgresql"
        self._insert = BulkInsert(engine.dialect.name)
        # Held by a write from its transaction to its index update, and by a catch-up from
        # reading a page of changes to applying it: otherwise a catch-up could read a row,
        # this process commit and index a newer state of it, and the catch-up then apply the
        # older state over it (and skip the newer one later as already applied).
        self._feed_lock = threading.RLock()
        self._generation = 0  # how many times the index was emptied (`_empty_index`)

    def close(self) -> None:
        """Release the index's writer lock and the database connections."""
        if self.index is not None:
            self.index.close()
        self.engine.dispose()

    # ----------------------------------------------------------------- papers

    def upsert_many(
        self,
        papers: Iterable[PaperIn],
        now: datetime,
        *,
        announced_at: datetime | None = None,
        events: bool = True,
    ) -> UpsertResult:
        """Insert or merge papers, one transaction per batch; the index follows each batch.

        Every paper passes `clean_paper` first; one the store still cannot take is left out
        and reported in `skipped` (with its id and why), and the rest are stored. New papers
        count as announced when their own dates say (`bot.announce`), or at `announced_at` if
        given (the demo's bundled papers play today's listing). A merge that changes a
        paper's code, version, venue, upvotes or stars records paper events
        (`bot.paper_events`) in its transaction, unless `events` is False (an import).
        """
        write = _Write(now, announced_at, events)
        result = UpsertResult()
        batch: list[PaperIn] = []
        refused = 0
        for paper in papers:
            cleaned = clean_paper(paper)
            if isinstance(cleaned, Rejected):
                result.skipped.append(cleaned)
                refused += 1
                if refused <= LOG_SKIPS:  # a broken file has millions
                    _log_rejected(cleaned, paper.source)
                continue
            batch.append(cleaned)
            if len(batch) >= BATCH:
                result += self._upsert_isolated(batch, write)
                batch = []
        if batch:
            result += self._upsert_isolated(batch, write)
        if refused > LOG_SKIPS:
            logger.warning("%d more papers skipped without a log line each", refused - LOG_SKIPS)
        if self.index is not None:
            self.index.flush()  # one index commit per call, not per batch (bulk imports)
        return result

    def _upsert_isolated(self, batch: Sequence[PaperIn], write: _Write) -> UpsertResult:
        """One batch in one transaction; if the database refuses it, paper by paper, so one
        bad record costs only itself. A lost connection or a lock timeout is not a bad
        record: it is raised (the caller keeps its place and tries again later)."""
        try:
            return self._upsert_batch(batch, write)
        except _INFRA:
            raise
        except _RECORD_ERRORS as exc:
            if len(batch) == 1:
                return _skipped_one(batch[0], exc)
            logger.warning(
                "a batch of %d papers failed (%s); storing them one by one", len(batch), _short(exc)
            )
        result = UpsertResult()
        for paper in batch:
            try:
                result += self._upsert_batch([paper], write)
            except _INFRA:
                raise
            except _RECORD_ERRORS as exc:
                result += _skipped_one(paper, exc)
        return result

    def _upsert_batch(self, batch: Sequence[PaperIn], write: _Write) -> UpsertResult:
        merged_in: dict[str, PaperIn] = {}
        for paper in batch:  # the same id twice in one batch: merge in order
            if paper.id in merged_in:
                merge_into(merged_in[paper.id], paper)
            else:
                merged_in[paper.id] = paper
        with self._feed_lock:
            return self._write_batch(merged_in, write)

    def _write_batch(self, merged_in: dict[str, PaperIn], write: _Write) -> UpsertResult:
        result = UpsertResult()
        aliases: Counter[tuple[str, str]] = Counter()
        now = write.now
        with Session(self._writer) as session, session.begin():
            mark = self._change_mark(session)
            existing = self._existing(session, list(merged_in))
            inserts: list[Row] = []
            updates: list[Row] = []
            events: list[Row] = []
            for pid, incoming in merged_in.items():
                old = existing.get(pid)
                if old is None:
                    row = new_row(incoming, now, mark)
                    if write.announced_at is not None:
                        row["announced_at"] = write.announced_at
                    inserts.append(row)
                    result.added.append(pid)
                    aliases.update(mine_aliases(incoming.title))
                    aliases.update(mine_aliases(incoming.abstract))
                elif (new := _changed(old, incoming, now, mark)) is None:
                    result.unchanged += 1
                else:
                    updates.append(new)
                    result.updated.append(pid)
                    if write.events:
                        events += event_rows(old, new, now, mark)
                    if incoming.abstract and incoming.abstract != old["abstract"]:
                        aliases.update(mine_aliases(incoming.abstract))
            self._write_rows(session, inserts, updates, aliases)
            write_events(session, events)
        if aliases:
            self._aliases = None
        if self.index is not None and (inserts or updates):
            # Rows as dicts: validating models costs more than indexing. The mark tells the
            # index these changes are applied, so its next catch-up does not read them again.
            self.index.upsert([*inserts, *updates], own_mark=mark)
        return result

    def _existing(self, session: Session, ids: list[str]) -> dict[str, Row]:
        table = Paper.__table__  # type: ignore[attr-defined]
        rows = session.execute(select(table).where(table.c.id.in_(ids))).mappings()
        return {row["id"]: dict(row) for row in rows}

    def _write_rows(
        self,
        session: Session,
        inserts: list[Row],
        updates: list[Row],
        aliases: Counter[tuple[str, str]],
    ) -> None:
        if inserts:
            # Straight through the driver: the import's hottest statement (bot.paper_rows).
            session.connection().exec_driver_sql(self._insert.sql, self._insert.values(inserts))
        table = Paper.__table__  # type: ignore[attr-defined]
        for row in updates:
            session.execute(table.update().where(table.c.id == row["id"]).values(**row))
        if aliases:
            self._add_aliases(session, aliases)

    def _change_mark(self, session: Session) -> int:
        """This write transaction's change-feed mark (its first statement).

        SQLite: one more than the highest mark. Writers hold the database's write lock from
        BEGIN IMMEDIATE to COMMIT, so marks are handed out, and become visible, in commit
        order. PostgreSQL: the transaction's id; a reader only reads marks below the oldest
        transaction still running (`feed_bound`), so a late commit is never skipped.
        """
        if self._postgres:
            sql = "SELECT pg_current_xact_id()::text::bigint"
        else:
            sql = "SELECT coalesce(max(change_seq), 0) + 1 FROM paper"
        return int(session.execute(text(sql)).scalar_one())

    def _add_aliases(self, session: Session, counts: Counter[tuple[str, str]]) -> None:
        table = Alias.__table__  # type: ignore[attr-defined]
        stmt = upsert_stmt(self.engine, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["acronym", "expansion"],
            set_={"count": table.c.count + stmt.excluded.count},
        )
        rows = [
            {"acronym": a[:32], "expansion": e[:200], "count": n}
            for (a, e), n in sorted(counts.items())
        ]
        session.execute(stmt, rows)

    def get(self, paper_id: str) -> Paper | None:
        with Session(self.engine) as session:
            return session.get(Paper, paper_id)

    def get_many(self, ids: Sequence[str]) -> list[Paper]:
        """Papers by id, in the order of `ids` (missing ones left out)."""
        if not ids:
            return []
        with Session(self.engine) as session:
            rows = session.scalars(_BY_ID, {"ids": list(ids)}).all()
        by_id = {row.id: row for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    def texts(self, ids: Sequence[str]) -> list[PaperText]:
        """Title and abstract of papers by id, in the order of `ids` (missing ones left out):
        what reading a paper's words needs, without loading whole rows."""
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(_TEXTS, {"ids": list(ids)}).all()
        by_id = {row[0]: PaperText(row[1], row[2]) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    def count(self) -> int:
        with Session(self.engine) as session:
            return int(session.execute(select(func.count()).select_from(Paper)).scalar_one())

    def aliases(self) -> dict[str, list[str]]:
        """acronym -> expansions, and expansion -> acronyms, cached until new ones are mined."""
        if self._aliases is None:
            table: dict[str, list[str]] = {}
            with Session(self.engine) as session:
                rows = session.execute(
                    select(col(Alias.acronym), col(Alias.expansion), col(Alias.count)).order_by(
                        col(Alias.count).desc()
                    )
                ).all()
            for acronym, expansion, _count in rows:
                table.setdefault(acronym, []).append(expansion)
                table.setdefault(expansion, []).append(acronym)
            self._aliases = table
        return self._aliases

    # ----------------------------------------------------------- queries

    def top(self, since: date, limit: int, *, until: date) -> list[Paper]:
        """Most upvoted papers on the Daily Papers lists from `since` to `until` (a list dated
        after today is a source's mistake: it must not sit at the top for years)."""
        stmt = (
            select(Paper)
            .where(col(Paper.hf_daily_date) >= since, col(Paper.hf_daily_date) <= until)
            .order_by(col(Paper.upvotes).desc(), col(Paper.hf_daily_date).desc(), col(Paper.id))
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [_one(r) for r in session.execute(stmt).all()]

    def newest_daily_date(self, until: date) -> date | None:
        newest = select(func.max(Paper.hf_daily_date)).where(col(Paper.hf_daily_date) <= until)
        with Session(self.engine) as session:
            value: date | None = session.execute(newest).scalar_one()
        return value


# What one record can make the database (or the driver, before it) refuse: a value out of
# range, too long, with a byte the encoding refuses. Anything else is not the record's fault.
_RECORD_ERRORS = (DBAPIError, StatementError, ValueError, TypeError, OverflowError)
_INFRA = (OperationalError, InterfaceError)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return " ".join(text.split())[:200]


def _log_rejected(rejected: Rejected, source: str) -> None:
    logger.warning("%s: skipped paper %s: %s", source, rejected.shown, rejected.reason)


def _skipped_one(paper: PaperIn, exc: BaseException) -> UpsertResult:
    rejected = Rejected(paper.id, f"the database refused it: {_short(exc)}")
    _log_rejected(rejected, paper.source)
    return UpsertResult(skipped=[rejected])


def _changed(old: Row, incoming: PaperIn, now: datetime, mark: int) -> Row | None:
    """The stored row `old` with `incoming` merged in, or None if that changes nothing."""
    new = merged_row(old, incoming.as_row_values(), incoming.source, now)
    if new == old:
        return None
    new["updated_at"] = now
    new["change_seq"] = mark
    return new
