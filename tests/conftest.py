"""Shared fixtures: fixed time, SQLite and real PostgreSQL stores, the shared fixtures folder.

PostgreSQL tests use $PAPERBOY_TEST_PG_URL (default: the local server, database `test`). Each
test session creates its own scratch database on that server and drops it at the end, so runs
in parallel do not see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

from bot.db import make_engine
from bot.store import PaperStore

if TYPE_CHECKING:
    from tests.fakes import TestBot

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PG_URL = os.environ.get("PAPERBOY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reaches the PostgreSQL server carries the `postgres` marker, so
    `pytest -m "not postgres"` runs everywhere; a new PG test cannot forget it (test_markers)."""
    for item in items:
        if {"pg_url", "pg_engine"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test session (dropped afterwards)."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"paperboy_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.fail(
            f"PostgreSQL at {PG_URL} is not reachable ({exc}); start it or point "
            "PAPERBOY_TEST_PG_URL at a server where this user may create databases"
        )
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    SQLModel.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'paperboy.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on a real SQLite file and on the real PostgreSQL server."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def store(sqlite_engine: Engine, tmp_path: Path) -> Iterator[PaperStore]:
    """A SQLite store with its search index in tmp_path (as `runtime` wires it)."""
    from bot.index import open_index

    index = open_index(tmp_path / "index")
    yield PaperStore(sqlite_engine, index=index)
    index.close()


@pytest.fixture
def bot(store: PaperStore) -> TestBot:
    """An in-memory paperboy with the test papers (`tests.fakes.TestBot`):
    `reply = await bot.ask("top week")`, `bot.outbox.sent`."""
    from tests.fakes import TestBot, sample_papers

    store.upsert_many(sample_papers(NOW), NOW - timedelta(hours=1))
    return TestBot(store, NOW)
