"""Is an index directory healthy? Checksums of its files, a probe of its postings, and Rust
panics turned into `IndexDamaged` (the caller rebuilds the index from the store)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import tantivy
from tantivy import Occur, Query as TQuery

from bot.errors import IndexDamaged
from bot.index_aliases import digest
from bot.index_schema import SCHEMA_VERSION, STATE_FILE

T = TypeVar("T")


def no_panic(compute: Callable[[], T]) -> Callable[[], T]:
    """`compute` with tantivy's Rust panics turned into `IndexDamaged`: pyo3's
    `PanicException` derives from BaseException, so `except Exception` would miss it."""

    def guarded() -> T:
        try:
            return compute()
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:  # noqa: B036 - see the docstring
            if not is_panic(exc):
                raise
            raise IndexDamaged(f"search index panicked: {exc}") from None

    return guarded


def is_panic(exc: BaseException) -> bool:
    """A Rust panic inside tantivy, as pyo3 raises it (`pyo3_runtime.PanicException`)."""
    return type(exc).__name__ == "PanicException"


def probe(index: Any, schema: Any, path: Path | None) -> None:
    """Raise if the index files are unreadable: every segment file's checksum, one stored
    document, and one real query for its words (term dictionaries and postings of every
    segment that has them). Garbage inside a postings file passes a document read, and
    then every search that touches it panics."""
    if path is not None:
        damaged = damaged_files(path)
        if damaged:
            raise IndexDamaged(f"checksum mismatch in {', '.join(damaged[:5])}")
    searcher = index.searcher()
    words = []
    for _, addr in searcher.search(TQuery.all_query(), 1, count=False).hits:
        pid = str(searcher.doc(addr).get_first("id"))
        words.append((Occur.Should, TQuery.term_query(schema, "id", pid)))
    # A few common terms per text field (a short prefix keeps the dictionary walk small):
    # counting their matches decodes their postings in every segment.
    for name in ("title", "abstract", "authors"):
        for term, _count in searcher.terms_with_prefix(name, "mo", limit=2):
            words.append((Occur.Should, TQuery.term_query(schema, name, term)))
    if words:
        searcher.search(TQuery.boolean_query(words), 10, count=True)


_FOOTER_MAGIC = 1337  # tantivy's file footer: JSON {"version":..,"crc":..}, u32 length, magic
_SEGMENT_SUFFIXES = (".idx", ".pos", ".term", ".store", ".fast", ".fieldnorm")


def damaged_files(path: Path) -> list[str]:
    """Files of the committed segments of the index at `path` whose CRC32 does not match
    their footer. Only segments named in meta.json: files another process is writing right
    now (listed in .managed.json already) are not complete yet."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        ids = [str(seg["segment_id"]).replace("-", "") for seg in meta["segments"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # tantivy's own open reports an unreadable meta.json
    damaged = []
    for seg in ids:
        for suffix in _SEGMENT_SUFFIXES:
            file = path / f"{seg}{suffix}"
            if file.exists() and not _crc_ok(file):  # a file merged away meanwhile is gone
                damaged.append(file.name)
    return damaged


def _crc_ok(file: Path) -> bool:
    size = file.stat().st_size
    with file.open("rb") as fh:
        if size < 8:
            return False
        fh.seek(size - 8)
        length, magic = int.from_bytes(fh.read(4), "little"), int.from_bytes(fh.read(4), "little")
        if magic != _FOOTER_MAGIC or length > size - 8:
            return False
        body = size - 8 - length
        fh.seek(body)
        try:
            expected = json.loads(fh.read(length))["crc"]
        except (ValueError, KeyError, TypeError):
            return False
        fh.seek(0)
        crc, left = 0, body
        while left:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                return False
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
        return bool(crc == expected)


def usable(path: Path) -> bool:
    """Is `path` an index of ours, of this schema version and acronym list (or an empty
    directory)?"""
    try:
        state = json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError):
        # No state file: a fresh directory is fine, an index without our state is not ours.
        return not any(path.iterdir())
    if not isinstance(state, dict) or state.get("schema") != SCHEMA_VERSION:
        return False
    if state.get("aliases") != digest():
        return False  # built with another curated acronym list (`bot.index_aliases`)
    try:
        return bool(tantivy.Index.exists(str(path)))
    except (ValueError, OSError):
        return False
