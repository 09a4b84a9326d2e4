"""Bulk import of the Kaggle snapshot: streaming, resumable, idempotent, tolerant of bad lines."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import SourceError
from bot.sources.snapshot import ProgressBar, cursor_name, import_snapshot
from bot.store import PaperStore
from tests.conftest import FIXTURES

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def line(n: int, title: str | None = None) -> str:
    return json.dumps(
        {
            "id": f"0704.{n:04d}",
            "submitter": "S",
            "authors": "A. Author",
            "title": title or f"Paper {n} about\n  things",
            "comments": None,
            "journal-ref": None,
            "doi": None,
            "report-no": None,
            "categories": "cs.CL",
            "license": None,
            "abstract": f"  Abstract {n}.\n",
            "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
            "update_date": "2008-11-26",
            "authors_parsed": [["Author", "A.", ""]],
        }
    )


def write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def test_import_fills_the_store_and_a_second_run_adds_nothing(
    store: PaperStore, tmp_path: Path
) -> None:
    path = write(tmp_path / "snap.jsonl", [line(n) for n in range(1, 26)])
    first = import_snapshot(store, path, NOW, chunk=10)
    assert (first.lines, first.added, first.skipped, first.finished) == (25, 25, 0, True)
    paper = store.get("0704.0001")
    assert paper is not None and paper.title == "Paper 1 about things"
    second = import_snapshot(store, path, NOW, chunk=10)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 25)
    assert store.count() == 25


def test_interrupted_import_resumes_where_it_stopped(store: PaperStore, tmp_path: Path) -> None:
    path = write(tmp_path / "snap.jsonl", [line(n) for n in range(1, 26)])
    first = import_snapshot(store, path, NOW, chunk=10, limit=12)
    assert first.lines == 12 and not first.finished
    state = store.source_state(cursor_name(path))
    assert state is not None and state.cursor
    second = import_snapshot(store, path, NOW, chunk=10)
    assert second.resumed_from == json.loads(state.cursor)["offset"]
    assert second.lines == 13 and second.added == 13 and second.finished
    assert store.count() == 25
    done = store.source_state(cursor_name(path))
    assert done is not None and done.cursor is None and done.papers_added == 25


def test_crash_mid_import_keeps_committed_batches(store: PaperStore, tmp_path: Path) -> None:
    path = write(tmp_path / "snap.jsonl", [line(n) for n in range(1, 26)])
    calls = 0

    def crash(_done: int, _total: int, _report: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_snapshot(store, path, NOW, chunk=10, progress=crash)
    assert store.count() == 20  # two batches committed before the interrupt
    again = import_snapshot(store, path, NOW, chunk=10)
    assert again.lines == 5 and again.added == 5 and store.count() == 25


def test_bad_lines_are_skipped_and_counted(store: PaperStore) -> None:
    report = import_snapshot(store, FIXTURES / "sources" / "snapshot.jsonl", NOW)
    assert (report.added, report.skipped) == (3, 2)
    assert store.get("hep-th/9901001") is not None


def test_unfinished_last_line_is_left_for_the_next_run(store: PaperStore, tmp_path: Path) -> None:
    path = tmp_path / "snap.jsonl"
    complete = [line(n) for n in range(1, 4)]
    path.write_text("\n".join(complete) + "\n" + line(4)[:50], encoding="utf-8")
    first = import_snapshot(store, path, NOW)
    assert first.added == 3 and not first.finished
    path.write_text("\n".join([*complete, line(4)]) + "\n", encoding="utf-8")
    second = import_snapshot(store, path, NOW)
    assert second.added == 1 and second.finished


def test_last_line_without_newline_is_imported(store: PaperStore, tmp_path: Path) -> None:
    path = write(tmp_path / "snap.jsonl", [line(1), line(2)], end="")
    assert import_snapshot(store, path, NOW).added == 2


def test_missing_file_is_a_clear_error(store: PaperStore, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        import_snapshot(store, tmp_path / "nope.jsonl", NOW)


def test_cursor_name_fits_the_column(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120) / "arxiv-metadata-oai-snapshot.json"
    assert len(cursor_name(deep)) <= 64
    assert cursor_name(deep) != cursor_name(tmp_path / "arxiv-metadata-oai-snapshot.json")


def test_progress_bar_reports_to_its_stream(store: PaperStore, tmp_path: Path) -> None:
    path = write(tmp_path / "snap.jsonl", [line(n) for n in range(1, 26)])
    out = io.StringIO()
    import_snapshot(store, path, NOW, chunk=10, progress=ProgressBar(out))
    text = out.getvalue()
    assert "100.0%" in text and "25 lines" in text


def test_progress_moves_while_a_chunk_is_read(store: PaperStore, tmp_path: Path) -> None:
    """The bar moves every thousand lines, not only when a 10,000-line chunk commits."""
    path = write(tmp_path / "snap.jsonl", [line(n) for n in range(1, 2501)])
    seen: list[int] = []
    import_snapshot(store, path, NOW, progress=lambda _done, _total, r: seen.append(r.lines))
    assert seen == [1000, 2000, 2500]
