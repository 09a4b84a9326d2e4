"""Bulk import of the Kaggle arXiv metadata snapshot (JSON Lines, one paper per line).

`iter_snapshot_lines` streams the file in binary, so it always knows the byte offset after
each line: `import_snapshot` stores that offset in `SourceState` (`snapshot:<file>`) after
every committed batch, so an interrupted import resumes where it stopped, and re-reading a
batch is harmless because the store's upsert is idempotent (a second full run adds nothing).
When an import finishes, the cursor is cleared: running it again re-checks every line.

Each line has 14 keys (../shared/reference/data-sources.md §2.4). Authors come from
`authors_parsed` (TeX accents decoded, the same Unicode names the API and HF give), falling
back to the raw `authors` string; title and abstract keep their TeX, whitespace collapsed.
The first version's date is the paper's date; the last version is the version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

from bot.errors import SourceError
from bot.ids import ARXIV_ID_RE
from bot.models import PaperIn
from bot.sources.common import SkipLog, collapse, parse_iso, parse_rfc822, skip, split_authors
from bot.store import PaperStore

logger = logging.getLogger(__name__)

SOURCE = "arxiv"
CHUNK = 10_000  # lines per committed step (the cursor moves after each)
SHOW_LINES = 20  # skipped line numbers printed in the summary
PROGRESS_LINES = 1_000  # lines between progress updates while a chunk is read (about 0.1 s)
KEEP_LINES = 10_000  # skipped line numbers kept in the report (a broken file has millions)

# orjson parses these lines ~3x faster than json (the whole parse ~1.35x; bench/ingest.py).
_loads: Callable[[bytes | str], Any] = orjson.loads


def _name(parts: Any) -> str:
    """`[last, first, suffix]` -> `first last suffix`.

    Some records carry a 4th item, the affiliation (`["Tolstoy", "V. N.", "", "INP, Moscow
    State University"]`): it is not part of the name and is left out.
    """
    try:
        last, first, suffix = parts if len(parts) == 3 else parts[:3]
        name = f"{first} {last} {suffix}" if suffix else f"{first} {last}"
    except (TypeError, ValueError):  # fewer than 3 items or not a list: join what strings there are
        if not isinstance(parts, list):
            return ""
        name = " ".join(p for p in parts[1:2] + parts[:1] if isinstance(p, str))
    if not isinstance(name, str) or "  " in name or name[:1] == " " or name[-1:] == " ":
        name = " ".join(str(name).split())
    return name


def _log_skip(reason: str, item: Any = None) -> None:
    skip("snapshot", reason, item)


Reject = Callable[..., None]  # (reason, item=None): told why a line was left out


def parse_snapshot_record(obj: Any, reject: Reject = _log_skip) -> PaperIn | None:
    """One decoded snapshot line -> PaperIn, or None (logged) when it is unusable."""
    if not isinstance(obj, dict):
        reject("line is not a JSON object")
        return None
    raw_id = obj.get("id")
    match = ARXIV_ID_RE.match(raw_id) if isinstance(raw_id, str) else None
    if match is None:
        reject(f"id {raw_id!r} is not an arXiv id")
        return None
    title = collapse(obj.get("title"))
    if not title:
        reject(f"{raw_id} has no title")
        return None
    abstract = obj.get("abstract")
    parsed = obj.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        authors = [n for n in map(_name, parsed) if n]
    else:
        raw = obj.get("authors")
        authors = split_authors(raw) if isinstance(raw, str) else []
    categories = obj.get("categories")
    versions = obj.get("versions")
    published = None
    version = int(match.group("v")) if match.group("v") else None
    if isinstance(versions, list) and versions:
        first, last = versions[0], versions[-1]
        if isinstance(first, dict):
            published = parse_rfc822(first.get("created"))
        if isinstance(last, dict):
            tag = last.get("version")
            if isinstance(tag, str) and tag[1:].isdigit():
                version = int(tag[1:])
    if published is None and isinstance(obj.get("update_date"), str):
        published = parse_iso(obj["update_date"] + "T00:00:00Z")
    return PaperIn(
        id=match.group("new") or match.group("old"),
        version=version,
        title=title,
        source=SOURCE,
        abstract=collapse(abstract),
        authors=authors,
        categories=categories.split() if isinstance(categories, str) else [],
        published_at=published,
        arxiv_comment=collapse(obj.get("comments")) or None,
        journal_ref=collapse(obj.get("journal-ref")) or None,
    )


def parse_snapshot_line(line: bytes | str, reject: Reject = _log_skip) -> PaperIn | None:
    """One line of the snapshot -> PaperIn, or None (logged) if malformed."""
    try:
        obj = _loads(line)
    except ValueError as exc:
        reject(f"line is not valid JSON ({exc})", line[:80])
        return None
    return parse_snapshot_record(obj, reject)


def iter_snapshot_lines(
    path: str | Path, start: int = 0, limit: int | None = None, reject: Reject = _log_skip
) -> Iterator[tuple[int, PaperIn | None]]:
    """(byte offset after the line, paper or None) for each line from byte `start`."""
    with open(path, "rb") as file:
        yield from _iter_file(file, start, limit, reject)


def _iter_file(
    file: IO[bytes], start: int, limit: int | None, reject: Reject = _log_skip
) -> Iterator[tuple[int, PaperIn | None]]:
    for offset, _number, paper in _iter_numbered(file, start, 0, limit, reject):
        yield offset, paper


def _iter_numbered(
    file: IO[bytes], start: int, first: int, limit: int | None, reject: Reject = _log_skip
) -> Iterator[tuple[int, int, PaperIn | None]]:
    """(byte offset after the line, its 1-based line number, paper or None); `first` is the
    number of lines before byte `start`."""
    file.seek(start)
    offset = start
    count = 0
    for line in file:
        if limit is not None and count >= limit:
            return
        offset += len(line)
        count += 1
        if len(line) < 3 and not line.strip():  # (no strip() copy of every long line)
            continue
        if not line.endswith(b"\n") and _truncated(line):
            # An unfinished last line (a download still running, a cut file): not consumed,
            # so a later import picks it up once it is complete.
            reject(f"last line is incomplete at byte {offset - len(line)}")
            return
        number = first + count
        yield offset, number, parse_snapshot_line(line, partial(_at_line, reject, number))


def _at_line(reject: Reject, number: int, reason: str, item: Any = None) -> None:
    reject(f"line {number}: {reason}", item)


def _truncated(line: bytes) -> bool:
    try:
        _loads(line)
    except ValueError:
        return True
    return False


@dataclass
class ImportReport:
    path: str
    lines: int = 0  # lines read in this run
    papers: int = 0  # lines that gave a paper
    skipped: int = 0  # lines that gave no paper, or a paper the store refused
    skipped_lines: list[int] = field(default_factory=list)  # their line numbers (first ones)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    resumed_from: int = 0  # byte offset this run started at
    seconds: float = 0.0
    finished: bool = False

    def summary(self) -> str:
        rate = self.lines / self.seconds if self.seconds else 0.0
        resumed = f", resumed at byte {self.resumed_from:,}" if self.resumed_from else ""
        done = "" if self.finished else " (stopped early; run again to continue)"
        text = (
            f"{self.path}: {self.lines:,} lines, {self.added:,} added, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged, {self.skipped:,} skipped in {self.seconds:.1f} s "
            f"({rate:,.0f} lines/s){resumed}{done}"
        )
        if self.skipped_lines:
            shown = ", ".join(str(n) for n in self.skipped_lines[:SHOW_LINES])
            more = self.skipped - min(len(self.skipped_lines), SHOW_LINES)
            text += f"\nskipped lines: {shown}" + (f" and {more:,} more" if more > 0 else "")
            text += " (the log says why)"
        return text

    def skip_line(self, number: int) -> None:
        self.skipped += 1
        if len(self.skipped_lines) < KEEP_LINES:
            self.skipped_lines.append(number)


Progress = Callable[[int, int, ImportReport], None]  # (bytes done, bytes total, report)


def cursor_name(path: str | Path) -> str:
    """The SourceState key of an import of `path` (fits the 64-character column)."""
    full = str(Path(path).resolve())
    digest = hashlib.sha1(full.encode()).hexdigest()[:12]
    return f"snapshot:{Path(full).name[:36]}:{digest}"


def import_snapshot(
    store: PaperStore,
    path: str | Path,
    now: datetime,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
    clock: Callable[[], float] = time.perf_counter,
) -> ImportReport:
    """Stream `path` into the store, `chunk` lines per transaction, resuming a stopped run.

    `limit` caps the lines read in this run (the cursor keeps the place for the next run).
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise SourceError(f"snapshot: {file_path} does not exist or is not a file")
    size = file_path.stat().st_size
    name = cursor_name(file_path)
    start, first_line = _resume_offset(store, name, size)
    run = _Import(store, name, size, now, progress, clock)
    run.report.resumed_from = start
    run.report.path = str(file_path)
    offset = start
    rejects = SkipLog("snapshot")
    with open(file_path, "rb") as file:
        for offset, line_no, paper in _iter_numbered(file, start, first_line, limit, rejects):
            run.add(line_no, paper)
            if run.lines_in_batch >= chunk:
                run.commit(offset)
            elif progress is not None and run.report.lines % PROGRESS_LINES == 0:
                # Between commits too: a chunk takes about a second, a bar should move smoothly.
                run.show(offset)
    if run.lines_in_batch:
        run.commit(offset)
    return run.finish(offset)


class _Import:
    """One run of `import_snapshot`: the batch being read and what the run did so far."""

    def __init__(
        self,
        store: PaperStore,
        name: str,
        size: int,
        now: datetime,
        progress: Progress | None,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.name, self.size, self.now = store, name, size, now
        self.progress, self.clock = progress, clock
        self.report = ImportReport(path="")
        self.began = clock()
        self.batch: list[PaperIn] = []
        self.lines_of: dict[str, int] = {}  # paper id -> its (last) line number in the batch
        self.lines_in_batch = 0
        self.line_no = 0

    def add(self, line_no: int, paper: PaperIn | None) -> None:
        self.report.lines += 1
        self.lines_in_batch += 1
        self.line_no = line_no
        if paper is None:
            self.report.skip_line(line_no)
        else:
            self.report.papers += 1
            self.batch.append(paper)
            self.lines_of[paper.id] = line_no

    def commit(self, offset: int) -> None:
        report = self.report
        result = self.store.upsert_many(self.batch, self.now, events=False)
        report.added += len(result.added)
        report.updated += len(result.updated)
        report.unchanged += result.unchanged
        refused = sorted(self.lines_of.get(r.id, 0) for r in result.skipped)
        for number in refused:
            report.skip_line(number)
        report.papers -= len(refused)
        # The cursor moves past refused lines too: a resume never retries a bad line forever.
        self.store.set_source_cursor(
            self.name, json.dumps({"offset": offset, "size": self.size, "line": self.line_no})
        )
        self.store.record_source_success(self.name, self.now, added=len(result.added))
        self.batch.clear()
        self.lines_of.clear()
        self.lines_in_batch = 0
        self.show(offset)

    def show(self, offset: int) -> None:
        if self.progress is not None:
            self.report.seconds = self.clock() - self.began
            self.progress(offset, self.size, self.report)

    def finish(self, offset: int) -> ImportReport:
        report, store = self.report, self.store
        report.finished = offset >= self.size
        report.skipped_lines.sort()  # store refusals are found after the batch's parse skips
        # `/papers status` shows the import's state like a source's: how many lines it skipped.
        store.record_source_success(
            self.name,
            self.now,
            skipped=[f"line {n}" for n in report.skipped_lines[:5]],
            skipped_count=report.skipped,
        )
        if store.index is not None:
            store.index.flush()  # the index defers commits; make the import searchable now
        if report.finished:
            store.set_source_cursor(self.name, None)
        report.seconds = self.clock() - self.began
        return report


def _resume_offset(store: PaperStore, name: str, size: int) -> tuple[int, int]:
    """(byte offset, lines before it) where the last run stopped; (0, 0) to start over."""
    state = store.source_state(name)
    if state is None or not state.cursor:
        return 0, 0
    try:
        cursor = json.loads(state.cursor)
        offset = int(cursor["offset"])
        lines = int(cursor.get("line") or 0)  # absent in cursors of older versions
    except (ValueError, KeyError, TypeError, AttributeError):
        return 0, 0
    # A file that shrank is a different file: start over (idempotent anyway).
    return (offset, max(lines, 0)) if 0 < offset <= size else (0, 0)


class ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, stream: IO[str] | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def __call__(self, done: int, total: int, report: ImportReport) -> None:
        fraction = done / total if total else 1.0
        rate = report.lines / report.seconds if report.seconds else 0.0
        text = (
            f"{fraction:6.1%} {report.lines:>10,} lines {rate:>9,.0f}/s "
            f"+{report.added:,} ~{report.updated:,}"
        )
        if self.tty:
            filled = int(self.width * fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {text}")
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            decile = int(fraction * 10)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(text + os.linesep)
                self.stream.flush()
