"""Database engine and schema, per dialect: SQLite (WAL, busy timeout) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from bot import models  # noqa: F401  (registers the tables on SQLModel.metadata)

BUSY_TIMEOUT_MS = 10_000
# Reads through a memory map, up to 2 GiB of the file (SQLite caps it at its build's maximum):
# a search's few rows, scattered over a large store, cost a copy instead of a read() per page
# (six papers out of a 1M-paper store: about 0.1 ms instead of 0.9 ms).
MMAP_BYTES = 1 << 31
T = TypeVar("T")
SCHEMA_LOCK = 0x70617065  # "pape": the advisory lock that serialises schema creation


def make_engine(url: str) -> Engine:
    """An engine for `url`, with the schema created if it is not there yet."""
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            json_serializer=_json,
            json_deserializer=orjson.loads,
        )
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", _utc_session)
    if engine.dialect.name == "postgresql":
        # Several instances start at once: without a lock two of them both see a table
        # missing and the second CREATE TABLE fails. The lock is released at commit.
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            SQLModel.metadata.create_all(conn)
            _add_missing_columns(conn)
    else:
        with engine.begin() as conn:
            SQLModel.metadata.create_all(conn)
            _add_missing_columns(conn)
    return engine


def _add_missing_columns(conn: Any) -> None:
    """A store made by an older version lacks columns added since (create_all only creates
    missing tables): add them. Only columns that are nullable or have a scalar default are
    ever added to a table, so this is all an upgrade needs."""
    inspector = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            default = getattr(column.default, "arg", None)
            clause = ""
            if isinstance(default, bool):
                clause = f" DEFAULT {'TRUE' if default else 'FALSE'}"
            elif isinstance(default, int | float):
                clause = f" DEFAULT {default}"
            elif column.server_default is not None:  # change_seq: old papers get mark 0
                clause = f" DEFAULT {getattr(column.server_default, 'arg', 'NULL')}"
            conn.execute(
                text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}{clause}')
            )
    # Indexes on added columns (create_all makes them only with a new table).
    for ddl in _UPGRADE_INDEXES:
        conn.execute(text(ddl))


_UPGRADE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_paper_change ON paper (change_seq, id)",
    "CREATE INDEX IF NOT EXISTS ix_paper_announced_at ON paper (announced_at)",
    "CREATE INDEX IF NOT EXISTS ix_delivery_paper ON delivery (paper_id)",
)


def _utc_session(dbapi_conn: Any, _record: Any) -> None:
    """Every PostgreSQL session runs in UTC, whatever PGTZ, the role or the server say.

    The columns are `timestamptz`: instants are stored right in any zone as long as they are
    bound aware. But the session's TimeZone still decides how values come back (an aware
    datetime in New York time, printed by `/papers status` as if it were UTC) and how any
    `timestamp` cast or date arithmetic in SQL reads a wall clock. One zone everywhere.
    """
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        cur = dbapi_conn.cursor()
        cur.execute("SET TIME ZONE 'UTC'")
        cur.close()
    finally:
        dbapi_conn.autocommit = autocommit


def _sqlite_engine(url: str) -> Engine:
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if not memory:
        path = url.split("sqlite:///", 1)[-1]
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        poolclass=StaticPool if memory else None,
        json_serializer=_json,
        # Reading JSON columns back is the index catch-up's hottest conversion (5 per paper).
        json_deserializer=orjson.loads,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN decide transactions; the driver's implicit ones would hold
        # locks longer than we intend.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the write lock up front (see `writer`), so two writers wait on
        # busy_timeout instead of failing with "database is locked" when a read transaction
        # tries to upgrade. Readers stay deferred: in WAL mode they never block a writer.
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _json(value: Any) -> str:
    # The JSON columns (authors, categories, ...) are serialised for every paper written: the
    # bulk import's hottest conversion, several times faster with orjson than with json.
    return orjson.dumps(value).decode()


def writer(engine: Engine) -> Engine:
    """The same engine, for write transactions (on SQLite they begin IMMEDIATE)."""
    return engine.execution_options(sqlite_immediate=True)


def insert_ignore(engine: Engine | Connection, table: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for this engine's dialect."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def upsert_stmt(engine: Engine, table: Any) -> Any:
    """A dialect `insert` that supports `on_conflict_do_update`."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of at most `size` (bound parameter lists stay under the limits)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
