"""The store's change feed: every committed paper change reaches every instance's index,
whatever the commit order, transaction length or crash timing (docs/pipeline.md).

Each scenario ends the same way: every paper in the store is found by an exact-title search
in every instance's index. Clocks are deliberately unhelpful (later writes stamped earlier,
resumes hours later): the feed must not depend on them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.index import open_index
from bot.models import Paper, PaperIn
from bot.search import parse_query, search_papers
from bot.store import PaperStore
from tests.fakes import catch_up

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SMALL_BATCH = 40  # store batches, so a few hundred papers make many transactions


def tag(n: int) -> str:
    """A made-up word per number (aqb, aqc, ...): a title that only one paper has."""
    letters = "bcdfghjklmnpqrstvwxz"
    word = ""
    n += 400
    while n:
        n, r = divmod(n, len(letters))
        word += letters[r]
    return "q" + word


def title(n: int) -> str:
    return f"Walrus {tag(n)} migration under {tag(n + 7_000)} ice"


def paper(n: int, source: str = "snapshot", **kw: Any) -> PaperIn:
    # Ids not in ascending order of writing: a snapshot is sorted by id, a refresh is not.
    pid = f"26{(n * 7919) % 100:02d}.{n:05d}"
    return PaperIn(id=pid, title=title(n), source=source, abstract="An abstract.", **kw)


def missing(store: PaperStore, instance: PaperStore) -> list[str]:
    """Papers of the store that an exact-title search in `instance` does not find first."""
    with Session(store.engine) as session:
        rows = session.execute(select(Paper.id, Paper.title)).all()  # type: ignore[call-overload]
    lost = []
    for pid, text in rows:
        hits = search_papers(instance, parse_query(f'"{text}"', NOW), 1, NOW)
        if [h.paper.id for h in hits] != [pid]:
            lost.append(pid)
    return lost


def count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Paper)).scalar_one())


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.store.BATCH", SMALL_BATCH)


@pytest.mark.usefixtures("small_batches")
def test_a_refresh_committing_inside_a_long_import_loses_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    bot = PaperStore(engine, index=open_index(tmp_path / "bot"))
    importer = PaperStore(engine)  # `paperboy import` beside the bot: no index of its own

    def snapshot() -> Iterator[PaperIn]:
        for n in range(200):
            if n == 4 * SMALL_BATCH + 1:
                # Mid-import, the bot's refresh commits papers stamped LATER than the import
                # (whose batches are all stamped NOW), and its tick catches up.
                refresh = [paper(n, "hf") for n in range(1_000, 1_030)]
                bot.upsert_many(refresh, NOW + timedelta(hours=1))
                catch_up(bot)
            yield paper(n)

    importer.upsert_many(snapshot(), NOW)
    assert count(engine) == 230
    assert catch_up(bot) == 200 - 4 * SMALL_BATCH  # the rest of the import, each paper once
    assert missing(bot, bot) == []
    assert bot.sync_index() == 0  # the next tick re-indexes nothing
    bot.close()


_IMPORTER = r"""
import sys, time
from datetime import datetime
sys.path.insert(0, sys.argv[4])
from tests.test_feed import paper
import bot.store
from bot.db import make_engine
from bot.index import open_index
from bot.store import PaperStore

bot.store.BATCH = 40
url, index_dir, now = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
store = PaperStore(make_engine(url), index=open_index(index_dir))

def papers():
    for n in range(300):
        if n and n % 40 == 0:
            print(n, flush=True)  # the batch before this one is committed
            time.sleep(60 if n == 120 else 0.02)  # there: killed while it waits
        yield paper(n)

store.upsert_many(papers(), now)
print("done", flush=True)
"""


def test_kill_9_of_an_unordered_import_resumed_hours_later_loses_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    bot = PaperStore(engine, index=open_index(tmp_path / "bot"))
    bot.upsert_many([paper(n, "hf") for n in range(5_000, 5_020)], NOW)
    root = str(Path(__file__).resolve().parents[1])
    with subprocess.Popen(
        [sys.executable, "-c", _IMPORTER, url, str(tmp_path / "importer"), NOW.isoformat(), root],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "120":
                break
        # The bot catches up while the import runs, then the import dies without a goodbye.
        catch_up(bot)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    stored = count(engine)
    assert 20 + 120 <= stored < 20 + 300

    # Resumed much later, by a process whose index is the one the killed import left.
    later = NOW + timedelta(hours=5)
    importer = PaperStore(engine, index=open_index(tmp_path / "importer"))
    catch_up(importer)
    importer.upsert_many((paper(n) for n in range(300)), later)
    catch_up(bot)
    catch_up(importer)
    assert count(engine) == 320
    assert missing(bot, bot) == []
    assert missing(bot, importer) == []
    assert bot.sync_index() == 0
    for store in (bot, importer):
        store.close()


class HeldWrite:
    """A write of its own store (another process, say) whose transaction stays open, with its
    id taken, until `release()`: a refresh waiting out a 429 inside its transaction."""

    def __init__(self, engine: Engine, papers: list[PaperIn], now: datetime) -> None:
        self.store = PaperStore(engine)
        self.opened, self.released = threading.Event(), threading.Event()
        mark = self.store._change_mark

        def held(session: Any) -> int:
            value = mark(session)
            self.opened.set()
            assert self.released.wait(timeout=60)
            return value

        self.store._change_mark = held  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.store.upsert_many, args=(papers, now))
        self.thread.start()
        assert self.opened.wait(timeout=30)

    def release(self) -> None:
        self.released.set()
        self.thread.join(timeout=60)


@pytest.mark.postgres
def test_two_postgres_instances_with_interleaved_long_transactions(
    pg_engine: Engine, tmp_path: Path
) -> None:
    a = PaperStore(pg_engine, index=open_index(tmp_path / "a"))
    b = PaperStore(pg_engine, index=open_index(tmp_path / "b"))
    first = HeldWrite(pg_engine, [paper(n, "arxiv") for n in range(20)], NOW)
    a.upsert_many([paper(n, "hf") for n in range(100, 110)], NOW + timedelta(hours=2))
    second = HeldWrite(pg_engine, [paper(n, "arxiv") for n in range(300, 315)], NOW)
    b.upsert_many([paper(n, "hf") for n in range(200, 210)], NOW + timedelta(hours=3))
    for store in (a, b, a, b):
        store.sync_index()
    # Committed papers are searchable everywhere at once, though older transactions are
    # open; each feed's position waits below the oldest of them.
    assert missing(a, a) == [] and missing(a, b) == []
    second.release()  # the younger one commits first
    for store in (a, b):
        store.sync_index()
    assert missing(a, a) == [] and missing(a, b) == []
    first.release()  # then the oldest, hours after its papers were stamped
    # Each instance reads, once each: both late commits, and the other's papers (applied ahead
    # of the bound before, now read in order).
    assert catch_up(a) == 20 + 15 + 10
    assert catch_up(b) == 20 + 15 + 10
    assert count(pg_engine) == 55
    assert missing(a, a) == [] and missing(a, b) == []
    assert a.sync_index() == 0 and b.sync_index() == 0
    for store in (a, b):
        store.close()


def test_a_rebuild_during_a_catch_up_refills_every_paper(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search crash rebuilds the index (`rebuild_index`) while a digest tick's catch-up is
    between pages: the catch-up must not move the new, empty index's position past papers
    the refill has not applied yet."""
    PaperStore(sqlite_engine).upsert_many([paper(n) for n in range(60)], NOW)  # another process
    bot = PaperStore(sqlite_engine, index=open_index(tmp_path / "index"))
    monkeypatch.setattr("bot.store_feed.FEED_PAGE", 20)
    real = bot.changes
    pages = 0
    rebuilding: list[threading.Thread] = []

    def changes(*args: Any, **kw: Any) -> list[dict[str, Any]]:
        nonlocal pages
        rows = real(*args, **kw)
        pages += 1
        if pages == 2:  # the catch-up has applied page 1 and read page 2: the crash now
            rebuilding.append(threading.Thread(target=bot.rebuild_index))
            rebuilding[0].start()
            rebuilding[0].join(0.5)  # it runs as far as the catch-up lets it
        return rows

    monkeypatch.setattr(bot, "changes", changes)
    bot.sync_index()
    rebuilding[0].join()
    monkeypatch.setattr(bot, "changes", real)
    assert missing(bot, bot) == []
    assert bot.sync_index() == 0  # and nothing is left to catch up
    bot.close()
