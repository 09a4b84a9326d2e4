"""The full-text index: a tantivy index in the data directory that follows the store.

`PaperIndex` holds one document per paper (replaced by id on every upsert), answers a parsed
`bot.query.Query` with ranked `Ranked(id, score)` pairs, and remembers its position in the
store's change feed (a small JSON file beside the index, written with each commit) so
`PaperStore.sync_index` catches up exactly what changed while it was closed (docs/pipeline.md).
The SQL store stays the source of truth: a missing, corrupt or outdated index is simply rebuilt
(`open_index`).

This module is the writing half (open, upsert, commit, the feed position, recreate); the
reading half, searches and announcement windows, is `index_read.IndexReader`. Beside them:
`index_schema` (fields, analysers, documents), `index_compile` (AST -> tantivy query objects),
`index_rank` (ranking, sorting, the result cache) and `index_health` (checksums, probes,
panics).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tantivy

from bot.aliases import AliasTable
from bot.index_aliases import digest as alias_digest
from bot.index_health import probe, usable
from bot.index_rank import (
    Memo,
    Plan,
    ResultCache,
    SortBars,
)
from bot.index_read import Aliases, Fields, IndexReader
from bot.index_schema import (
    SCHEMA_VERSION,
    STATE_FILE,
    Ranked,
    analyzers,
    document,
    row_of,
    schema,
)
from bot.models import Paper

__all__ = ["STATE_FILE", "Aliases", "Fields", "PaperIndex", "Ranked", "open_index"]

logger = logging.getLogger(__name__)

RESULT_CACHE = 512  # answers remembered until the next commit (see `search`)
COMPILED_CACHE = 512  # compiled queries remembered until the next commit (see `_plan`)
WRITER_HEAP = 128_000_000
COMMIT_EVERY = 100_000  # documents queued before a commit even if nobody reads
WRITER_THREADS = 0  # 0: tantivy picks (one per core)


class PaperIndex(IndexReader):
    """A tantivy index of papers in `path` (a directory), or in memory when `path` is None.

    An index directory that is corrupt or of another schema version is recreated empty
    (with a warning); `store.sync_index()` then refills it from the store.
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        self.schema = schema()
        self._analyzers = analyzers()
        self._lock = threading.RLock()
        self._writer: Any = None
        # Change-feed state: every change ordered at or before `_position` (change_seq, id)
        # is applied, and so are the changes of the marks in `_own` (this process's writes,
        # indexed as they were written, above the position).
        self._position: tuple[int, str] = (0, "")
        self._own: set[int] = set()
        self._state_dirty = False
        self._pending = 0  # documents upserted but not committed yet
        self._pending_ids: set[str] = set()
        self._generation = 0  # bumped on every commit
        self._bars = SortBars()
        self._alias_table: tuple[Aliases, AliasTable] | None = None
        self._alias_version = 0
        self._cache = ResultCache(RESULT_CACHE)
        self._plans: Memo[Plan] = Memo(COMPILED_CACHE)
        # A follower (a Slack HTTP worker process) reads an index another process writes: it
        # never writes, and a commit of the writer (meta.json changes) empties its caches.
        self.read_only = False
        self._seen_on_disk = 0
        if self.path is None:
            self._open(None)
            return
        if self.path.exists() and not usable(self.path):
            logger.warning("search index at %s is outdated or not ours; rebuilding it", self.path)
            shutil.rmtree(self.path, ignore_errors=True)
        try:
            self._open(self.path)
            probe(self._index, self.schema, self.path)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: B036 - tantivy reports broken files as Rust panics
            logger.warning("search index at %s is unreadable (%s); rebuilding it", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            self._open(self.path)

    def _open(self, path: Path | None) -> None:
        if path is None:
            self._index = tantivy.Index(self.schema)
        else:
            path.mkdir(parents=True, exist_ok=True)
            fresh = not any(path.iterdir())
            self._index = tantivy.Index(self.schema, path=str(path), reuse=True)
            self._position, self._own = self._read_state()
            if fresh:
                # Mark a new index as ours at once: a first command that writes nothing
                # must not leave a directory the next start calls "not ours".
                self._write_state()
        for name, analyzer in self._analyzers.items():
            self._index.register_tokenizer(name, analyzer)
        self._index.reload()

    # ------------------------------------------------------------------ writing

    def _write_documents(self, writer: Any, papers: Sequence[Paper | Mapping[str, Any]]) -> None:
        searcher = self._index.searcher()
        pending = self._pending_ids
        for paper in papers:
            row = row_of(paper)
            key = row["id"].lower()
            # A delete costs more than indexing a small document; only papers already in
            # the index (committed, or queued since the last commit) need one.
            if key in pending or searcher.doc_freq("id", key):
                writer.delete_documents_by_term("id", key)
            pending.add(key)
            writer.add_document(document(row))

    def upsert(
        self,
        papers: Sequence[Paper | Mapping[str, Any]],
        *,
        position: tuple[int, str] | None = None,
        own_mark: int | None = None,
    ) -> bool:
        """Replace the documents of these papers (by id). `papers` are `Paper`s or store rows.

        `position`: these are the change feed's papers up to that (change_seq, id).
        `own_mark`: these are every change of that mark (a write of this process).
        False when the index is busy (nothing applied, the feed state unchanged).

        The commit is deferred to `flush()` (the store calls it at the end of each
        `upsert_many` / `sync_index`), to the next read (`search`, `doc_count`), or to
        every `COMMIT_EVERY` documents: a bulk import commits a few times instead of once per
        2,000-paper batch. The feed state is saved with each commit, so a crash before it
        costs a catch-up, never a lost paper.
        """
        if not papers:
            return True
        if self.read_only:
            return False  # the writer's next catch-up indexes them
        with self._lock:
            try:
                writer = self._get_writer()
            except ValueError as exc:
                # Another process holds this index's writer lock (say `paperboy search` while
                # `paperboy run` is up). Skip: the cursor does not move, so the next sync of
                # this index catches up, and searches meanwhile see the committed state.
                logger.warning("search index %s is busy (%s); not updated now", self.path, exc)
                return False
            self._write_documents(writer, papers)
            if position is not None and position > self._position:
                self._position = position
            if own_mark is not None and own_mark >= self._position[0]:
                self._own.add(own_mark)
            self._pending += len(papers)
            if self._pending >= COMMIT_EVERY:
                self._commit()
            return True

    def advance(self, bound: int) -> None:
        """Every change with a mark below `bound` is applied: move the position there and
        forget the own marks below it. Saved with the next flush."""
        with self._lock:
            if (bound, "") > self._position:
                self._position = (bound, "")
            self._own = {m for m in self._own if m >= self._position[0]}
            self._state_dirty = True

    def flush(self) -> None:
        """Commit what `upsert` queued and make it searchable."""
        with self._lock:
            if self._pending:
                self._commit()
            elif self._state_dirty:
                self._write_state()

    def _commit(self) -> None:
        self._writer.commit()
        self._index.reload()
        self._pending = 0
        self._pending_ids = set()
        self._generation += 1
        self._write_state()

    def clear(self) -> None:
        """Drop every document and forget the feed position (a rebuild follows)."""
        with self._lock:
            writer = self._get_writer()
            writer.delete_all_documents()
            self._position, self._own = (0, ""), set()
            self._commit()

    def position(self) -> tuple[int, str]:
        """(change_seq, id) up to which the store's change feed is applied; (0, "") when
        nothing is."""
        return self._position

    def own_marks(self) -> set[int]:
        """Marks above the position whose changes this index already applied."""
        return set(self._own)

    def optimize(self) -> None:
        """Commit, then wait for background merges (fewer segments search faster)."""
        with self._lock:
            self.flush()
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None
            self._index.reload()

    def close(self) -> None:
        """Commit and release the writer lock (another process may then write this index)."""
        with self._lock:
            self.flush()
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None

    def _get_writer(self) -> Any:
        if self._writer is None:
            self._writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=WRITER_THREADS)
        return self._writer

    def _read_state(self) -> tuple[tuple[int, str], set[int]]:
        assert self.path is not None
        try:
            state = json.loads((self.path / STATE_FILE).read_text())
            mark, pid = state["position"]
            return (int(mark), str(pid)), {int(m) for m in state.get("own", ())}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return (0, ""), set()

    def _write_state(self) -> None:
        self._state_dirty = False
        if self.path is None:
            return
        state = {
            "schema": SCHEMA_VERSION,
            "aliases": alias_digest(),
            "position": list(self._position),
            "own": sorted(self._own),
        }
        tmp = self.path / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path / STATE_FILE)  # atomic: never a half-written cursor

    def recreate(self) -> None:
        """Throw the index away and start it empty (a damaged index found at run time); the
        caller refills it with `store.sync_index()`."""
        if self.read_only:
            logger.error("search index %s is damaged; the writing process rebuilds it", self.path)
            return
        with self._lock:
            self._writer = None
            self._pending = 0
            self._pending_ids.clear()
            self._generation += 1
            self._bars.clear()
            self._position, self._own = (0, ""), set()  # the refill starts at the first change
            if self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
            self._open(self.path)


def open_index(path: Path | str | None) -> PaperIndex:
    """Open the index at `path` (None: in memory), recreating it empty when it is missing,
    corrupt or of another schema version. The caller then runs `store.sync_index()`."""
    return PaperIndex(path)
