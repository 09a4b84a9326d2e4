"""A really corrupted index (garbage inside a postings file, footers intact): tantivy panics
(pyo3's PanicException, a BaseException) on the searches that touch the garbage. The user gets
a polite answer and the index is rebuilt; on start the damage is found and rebuilt at once."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

import bot.index
from bot.config import Settings
from bot.db import make_engine
from bot.index import PaperIndex
from bot.index_health import damaged_files
from bot.messages import ChannelRef, Invocation, ReplyKind, UserRef
from bot.search import parse_query
from bot.service import BotService
from bot.store import PaperStore
from tests.conftest import NOW
from tests.fakes import paper

CHAN = ChannelRef("slack", "T1", "C1")
QUERIES = [f'"walrus number {i}"' for i in range(40)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store of 3,000 papers and its index, built once; each test works on a copy."""
    where = tmp_path_factory.mktemp("built")
    db = f"sqlite:///{where / 'db.sqlite'}"
    path = where / "index"
    store = PaperStore(make_engine(db), PaperIndex(path))
    # One indexing thread: one segment, whose postings file is big enough to corrupt
    # (with one thread per core, how the papers split between segments depends on load).
    threads, bot.index.WRITER_THREADS = bot.index.WRITER_THREADS, 1
    try:
        store.upsert_many(
            [
                paper(
                    f"2601.{i:05d}",
                    f"Walrus number {i} preference w{i % 97}",
                    f"We study walruses and preference optimization at scale x{i % 13} y{i % 31}.",
                )
                for i in range(3000)
            ],
            NOW - timedelta(hours=1),
        )
        store.close()
    finally:
        bot.index.WRITER_THREADS = threads
    return where


def build(built: Path, tmp_path: Path) -> tuple[Path, str]:
    shutil.copytree(built, tmp_path / "copy")
    return tmp_path / "copy" / "index", f"sqlite:///{tmp_path / 'copy' / 'db.sqlite'}"


def corrupt_postings(path: Path) -> None:
    """0xFF over 10 kB in the middle of the biggest .idx file; its footer stays valid."""
    biggest = max(path.glob("*.idx"), key=lambda f: f.stat().st_size)
    data = bytearray(biggest.read_bytes())
    assert len(data) > 21_000
    data[10_000:20_000] = b"\xff" * 10_000
    biggest.write_bytes(bytes(data))


async def answer(service: BotService, text: str) -> tuple[ReplyKind, str]:
    reply = await service.ask(Invocation(text, CHAN, UserRef("slack", "U1")))
    return reply.kind, reply.title + " " + reply.text


async def test_a_panicking_index_answers_politely_and_is_rebuilt(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path, db = build(built, tmp_path)
    corrupt_postings(path)
    # The damage happens after start-up (a disk error while running): skip the start check.
    monkeypatch.setattr("bot.index.probe", lambda *_: None)
    store = PaperStore(make_engine(db), PaperIndex(path))
    monkeypatch.undo()
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)

    answers = [await answer(service, q) for q in QUERIES]
    repaired = [text for kind, text in answers if "being repaired" in text]
    assert repaired, "no search touched the garbage"
    assert all("went wrong" not in text for _, text in answers)
    assert service._rebuild is not None
    await service._rebuild
    assert "rebuilt from the store: 3000 papers" in caplog.text

    after = [await answer(service, q) for q in QUERIES]
    assert all(kind is ReplyKind.RESULTS for kind, _ in after), after[:3]
    store.close()


def test_start_up_finds_garbage_in_postings_and_rebuilds(
    built: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, db = build(built, tmp_path)
    corrupt_postings(path)
    assert damaged_files(path)

    with caplog.at_level(logging.WARNING):
        index = PaperIndex(path)
    assert "rebuilding it" in caplog.text
    store = PaperStore(make_engine(db), index)
    assert store.sync_index() == 3000
    assert not damaged_files(path)

    from bot import search

    for q in QUERIES:
        hits = search.search_papers(store, search.parse_query(q, NOW), 5, NOW)
        assert hits and hits[0].paper.title.startswith("Walrus number")
    store.close()


def test_paperboy_search_on_a_damaged_index_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main
    from bot.errors import IndexDamaged

    def panics(*_args: object, **_kwargs: object) -> None:
        raise IndexDamaged("search index panicked: Compressed array seems too small")

    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    monkeypatch.setattr(PaperIndex, "search", panics)
    assert main(["search", "dpo"]) == 1
    err = capsys.readouterr().err
    assert "paperboy reindex" in err and "Traceback" not in err


def test_an_in_memory_index_rebuilt_after_damage_finds_every_paper_again(
    sqlite_engine: Engine,
) -> None:
    store = PaperStore(sqlite_engine, PaperIndex(None))
    store.upsert_many(
        [paper(f"2601.{i:05d}", f"Walrus number {i}", "Walruses.") for i in range(20)],
        NOW - timedelta(hours=1),
    )
    index = store.index
    assert index is not None
    index.recreate()  # what the service does when a search panics
    assert store.sync_index() == 20
    hits = index.search(parse_query('"walrus number 7"', NOW), store.aliases(), 5, NOW)
    assert [pid for pid, _ in hits][:1] == ["2601.00007"]
    assert index.doc_count() == 20
