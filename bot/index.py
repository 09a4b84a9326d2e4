"""The full-text index: a tantivy index in the data directory that follows the store.

`PaperIndex` holds one document per paper (replaced by id on every upsert), answers a parsed
`bot.search.Query` with ranked `(id, score)` pairs, and remembers its position in the store's
change feed (a small JSON file beside the index, written with each commit) so
`PaperStore.sync_index` catches up exactly what changed while it was closed (docs/pipeline.md).
The SQL store stays the source of truth: a missing, corrupt or outdated index is simply rebuilt
(`open_index`).

Queries are compiled from the AST into tantivy query objects (term, phrase, boolean, range,
boost); user text is never turned into a query string. Ranking: BM25 with field boosts
(title > keywords > abstract > authors), then the best ~100 are re-ranked in Python with
upvotes and recency. Filters and `sort:new|top` read fast fields. Every match of a common
word is scored (tantivy 0.27 does not prune conjunctions; measured at 1M papers: the plain
two-term AND `language model` over abstracts alone costs ~20 ms CPU for top 10 or top 60).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import shutil
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tantivy
from tantivy import (
    Document,
    FieldType,
    Filter,
    Occur,
    Order,
    Query as TQuery,
    SchemaBuilder,
    TextAnalyzerBuilder,
    Tokenizer,
)

from bot.aliases import AliasTable, Tokens, build_alias_table
from bot.errors import IndexDamaged
from bot.models import Paper
from bot.search import (
    AllOf,
    AnyOf,
    Author,
    Category,
    Node,
    Not,
    Phrase,
    Query,
    Sort,
    Word,
)

logger = logging.getLogger(__name__)

# Bump when the schema or the analysers change: an index of another version is rebuilt.
SCHEMA_VERSION = 3
STATE_FILE = "paperboy-index.json"

# Field boosts: a word in the title counts most, then keywords, abstract, authors.
BOOSTS = {"title": 3.0, "keywords": 2.0, "abstract": 1.0, "authors": 0.6}
TEXT_FIELDS = ("title", "keywords", "abstract")
FULL = tuple((name, BOOSTS[name]) for name in TEXT_FIELDS)
# `head` (the title twice, and the keywords) is still written but no query reads it since
# ranking scores every match exactly; dropping it is a schema change (SCHEMA_VERSION).
RERANK_DEPTH = 60  # BM25 hits re-ranked with upvotes and recency
SORT_HEAD = 2_000  # sort:new|top look among this many newest / most upvoted papers first
MAX_EXPANSIONS = 4  # alias forms tried per word
ALIAS_SLOP = 1  # an expansion matches as a phrase, with this many words in between at most
ALIAS_TIE = 0.2  # DisMax: the best form of a word counts, the others a little
# Phrase evidence for a run of words (field, slop, boost): together in the title counts most.
PROXIMITY = (("title", 1, 3.0), ("keywords", 1, 2.0), ("abstract", 0, 1.0))
POPULARITY = 0.12  # weight of log(1 + upvotes) in the final score
FRESHNESS = 0.2  # share of the score that decays with age (half-life 180 days)
PROXIMITY_MAX_DF = 100_000  # abstract proximity skipped when every word is this common
RESULT_CACHE = 512  # answers remembered until the next commit (see PaperIndex._cached)
MAX_RELAX_WORDS = 4  # more words: no "most of the words" tail (its combinations cost)
WRITER_HEAP = 128_000_000
COMMIT_EVERY = 100_000  # documents queued before a commit even if nobody reads
WRITER_THREADS = 0  # 0: tantivy picks (one per core)

_EN = "pb_en"
_NAME = "pb_name"
_CODE = "pb_code"


def _analyzers() -> dict[str, Any]:
    return {
        # Titles, keywords, abstracts: English stemming so `models` finds `model`.
        _EN: TextAnalyzerBuilder(Tokenizer.simple())
        .filter(Filter.remove_long(40))
        .filter(Filter.lowercase())
        .filter(Filter.ascii_fold())
        .filter(Filter.stemmer("english"))
        .build(),
        # Author names: no stemming (`Evans` is not `Evan`), accents folded.
        _NAME: TextAnalyzerBuilder(Tokenizer.simple())
        .filter(Filter.remove_long(40))
        .filter(Filter.lowercase())
        .filter(Filter.ascii_fold())
        .build(),
        # Ids and categories: one token, lower case.
        _CODE: TextAnalyzerBuilder(Tokenizer.raw()).filter(Filter.lowercase()).build(),
    }


def _schema() -> Any:
    sb = SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name=_CODE, index_option="basic")
    for name in (*TEXT_FIELDS, "head"):
        sb.add_text_field(name, tokenizer_name=_EN, index_option="position")
    sb.add_text_field("authors", tokenizer_name=_NAME, index_option="position")
    sb.add_text_field("categories", tokenizer_name=_CODE, index_option="basic")
    # Seconds since the epoch: when the paper appeared (published, else Daily Papers date,
    # else first seen). Indexed for since:/until:, fast for sort:new and recency.
    sb.add_integer_field("published", indexed=True, fast=True)
    sb.add_integer_field("upvotes", indexed=True, fast=True)
    # Seconds since the epoch: when the paper was announced (bot.announce); digests select
    # their window's papers with a range on it.
    sb.add_integer_field("announced", indexed=True, fast=True)
    return sb.build()


class PaperIndex:
    """A tantivy index of papers in `path` (a directory), or in memory when `path` is None.

    An index directory that is corrupt or of another schema version is recreated empty
    (with a warning); `store.sync_index()` then refills it from the store.
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        self.schema = _schema()
        self._analyzers = _analyzers()
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
        self._bars: dict[str, tuple[int, int | None]] = {}
        self._alias_table: tuple[Mapping[str, Sequence[str]], AliasTable] | None = None
        self.result_cache = RESULT_CACHE  # answers kept (0: none, every search computed)
        self._results: OrderedDict[tuple[Any, ...], list[tuple[str, float]]] = OrderedDict()
        self._cache_generation: tuple[int, int] = (-1, 0)
        self._alias_version = 0
        if self.path is None:
            self._open(None)
            return
        if self.path.exists() and not _usable(self.path):
            logger.warning("search index at %s is outdated or not ours; rebuilding it", self.path)
            shutil.rmtree(self.path, ignore_errors=True)
        try:
            self._open(self.path)
            self.probe()
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
        with self._lock:
            try:
                writer = self._get_writer()
            except ValueError as exc:
                # Another process holds this index's writer lock (say `paperboy search` while
                # `paperboy run` is up). Skip: the cursor does not move, so the next sync of
                # this index catches up, and searches meanwhile see the committed state.
                logger.warning("search index %s is busy (%s); not updated now", self.path, exc)
                return False
            searcher = self._index.searcher()
            pending = self._pending_ids
            for paper in papers:
                row = _fields(paper)
                key = row["id"].lower()
                # A delete costs more than indexing a small document; only papers already in
                # the index (committed, or queued since the last commit) need one.
                if key in pending or searcher.doc_freq("id", key):
                    writer.delete_documents_by_term("id", key)
                pending.add(key)
                writer.add_document(self._document(row))
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

    def _document(self, row: Mapping[str, Any]) -> Any:
        doc = Document()
        doc.add_text("id", row["id"])
        doc.add_text("title", row["title"])
        doc.add_text("head", row["title"])
        doc.add_text("head", row["title"])
        for keyword in row.get("ai_keywords") or ():
            doc.add_text("keywords", keyword)
            doc.add_text("head", keyword)
        if row.get("abstract"):
            doc.add_text("abstract", row["abstract"])
        for author in row.get("authors") or ():
            doc.add_text("authors", author)
        for code in row.get("categories") or ():
            code = code.lower()
            doc.add_text("categories", code)
            archive = code.split(".", 1)[0]
            if archive != code:
                doc.add_text("categories", archive)
        doc.add_integer("published", _seconds(_appeared(row)))
        doc.add_integer("upvotes", int(row.get("upvotes") or 0))
        when = row.get("announced_at")
        doc.add_integer("announced", _seconds(when) if when is not None else 0)
        return doc

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
            "position": list(self._position),
            "own": sorted(self._own),
        }
        tmp = self.path / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path / STATE_FILE)  # atomic: never a half-written cursor

    # ------------------------------------------------------------------ reading

    def probe(self) -> None:
        """Raise if the index files are unreadable: every segment file's checksum, one stored
        document, and one real query for its words (term dictionaries and postings of every
        segment that has them). Garbage inside a postings file passes a document read, and
        then every search that touches it panics."""
        if self.path is not None:
            damaged = damaged_files(self.path)
            if damaged:
                raise IndexDamaged(f"checksum mismatch in {', '.join(damaged[:5])}")
        searcher = self._index.searcher()
        words = []
        for _, addr in searcher.search(TQuery.all_query(), 1, count=False).hits:
            pid = str(searcher.doc(addr).get_first("id"))
            words.append((Occur.Should, TQuery.term_query(self.schema, "id", pid)))
        # A few common terms per text field (a short prefix keeps the dictionary walk small):
        # counting their matches decodes their postings in every segment.
        for name in ("title", "head", "abstract", "authors"):
            for term, _count in searcher.terms_with_prefix(name, "mo", limit=2):
                words.append((Occur.Should, TQuery.term_query(self.schema, name, term)))
        if words:
            searcher.search(TQuery.boolean_query(words), 10, count=True)

    def recreate(self) -> None:
        """Throw the index away and start it empty (a damaged index found at run time); the
        caller refills it with `store.sync_index()`."""
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

    def doc_count(self) -> int:
        self.flush()
        return int(self._index.searcher().num_docs)

    def search(
        self,
        query: Query,
        aliases: Mapping[str, Sequence[str]],
        limit: int,
        now: datetime,
    ) -> list[tuple[str, float]]:
        """Ranked (paper id, score) for `query`, best first, at most `limit`.

        Raises `IndexDamaged` when tantivy panics on broken files (see `_no_panic`)."""
        if limit <= 0 or query.is_empty():
            return []
        now = _to_hour(now)
        key = ("all", query, limit, now)
        return self._cached(key, aliases, lambda: self._search(query, aliases, limit, now))

    def _cached(
        self,
        key: tuple[Any, ...],
        aliases: Mapping[str, Sequence[str]],
        compute: Callable[[], list[tuple[str, float]]],
    ) -> list[tuple[str, float]]:
        """The answer to `key` from the result cache, else computed and remembered.

        Every matching paper competes for the top places, so a search of common words costs
        a full intersection of long posting lists (tens of ms at 1M papers). Teams repeat
        their searches (the same topics, the same acronyms), so answers are kept until the
        next commit changes the index (or the alias table changes). Scores use `now` to the
        hour, so a cached answer is exactly what a fresh search would give.
        """
        compute = _no_panic(compute)
        if self._pending:
            self.flush()
        if self.result_cache <= 0:
            return compute()
        self._compiler(aliases)  # (re)builds the alias table if the store's aliases changed
        state = (self._generation, self._alias_version)
        with self._lock:
            if self._cache_generation != state:
                self._results.clear()
                self._cache_generation = state
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
                return list(found)
        result = compute()
        with self._lock:
            if self._cache_generation == state:
                self._results[key] = list(result)
                while len(self._results) > self.result_cache:
                    self._results.popitem(last=False)
        return result

    def _search(
        self,
        query: Query,
        aliases: Mapping[str, Sequence[str]],
        limit: int,
        now: datetime,
    ) -> list[tuple[str, float]]:
        compiled = self.compile(query, aliases)
        if compiled is None:
            return []
        searcher = self._index.searcher()  # `_cached` has flushed pending writes
        sort = query.sort
        if sort is Sort.RELEVANCE and not query.has_text():
            sort = Sort.TOP  # nothing to score by text: the most upvoted first
        if sort is not Sort.RELEVANCE:
            field = "published" if sort is Sort.NEW else "upvotes"
            hits = []
            # Ordering by a fast field visits every match. Most queries find their newest
            # (most upvoted) papers among the newest (most upvoted) SORT_HEAD of the whole
            # index, a small posting list to intersect with: try that first. A paper below
            # the bar ranks below every paper above it, so the answer stays exact.
            bar = self._sort_bar(searcher, field)
            if bar is not None:
                recent = TQuery.range_query(
                    self.schema, field, FieldType.Integer, bar, None, use_inverted_index=True
                )
                narrowed = TQuery.boolean_query([(Occur.Must, compiled), (Occur.Must, recent)])
                hits = searcher.search(
                    narrowed, limit, count=False, order_by_field=field, order=Order.Desc
                ).hits
            if len(hits) < limit:
                hits = searcher.search(
                    compiled, limit, count=False, order_by_field=field, order=Order.Desc
                ).hits
            return [(self._id(searcher, addr), float(key)) for key, addr in hits]
        return self._ranked(searcher, compiled, limit, now, fresh=query.since is None)

    def search_relaxed(
        self,
        query: Query,
        aliases: Mapping[str, Sequence[str]],
        limit: int,
        now: datetime,
        exclude: Set[str] = frozenset(),
    ) -> list[tuple[str, float]]:
        """Papers that match most, not all, of the query's words, best first, leaving out
        `exclude` (the strict matches, which always rank above these)."""
        if limit <= 0 or query.is_empty() or query.sort is not Sort.RELEVANCE:
            return []
        now = _to_hour(now)
        key = ("most", query, limit, now, frozenset(exclude))

        def compute() -> list[tuple[str, float]]:
            compiled = self.compile_relaxed(query, aliases)
            if compiled is None:
                return []
            searcher = self._index.searcher()
            ranked = self._ranked(
                searcher, compiled, limit + len(exclude), now, fresh=query.since is None
            )
            return [(pid, score) for pid, score in ranked if pid not in exclude][:limit]

        return self._cached(key, aliases, compute)

    def _ranked(
        self, searcher: Any, compiled: Any, limit: int, now: datetime, fresh: bool = True
    ) -> list[tuple[str, float]]:
        """The top `RERANK_DEPTH` BM25 hits, re-ranked with upvotes and recency.

        Every matching paper competes for those places (no title-only tier). The lift only
        reorders them: proving that no paper further down could climb in would mean going
        thousands deep for common words (measured: 3.3 -> 51 ms CPU for `model` at 100k).
        With `fresh` False (a `since:` window: the reader already chose the period) age
        does not lift a paper; upvotes still do."""
        depth = max(RERANK_DEPTH, limit * 2)
        hits = searcher.search(compiled, depth, count=False).hits
        if not hits:
            return []
        addrs = [addr for _, addr in hits]
        upvotes = searcher.fast_field_values("upvotes", addrs)
        published = searcher.fast_field_values("published", addrs)
        now_s = now.timestamp()
        scored = sorted(
            (
                (_blend(score, int(up or 0), (now_s - (pub or 0)) / 86_400.0 if fresh else 0.0), i)
                for i, ((score, _), up, pub) in enumerate(
                    zip(hits, upvotes, published, strict=True)
                )
            ),
            key=lambda pair: (-pair[0], pair[1]),
        )[:limit]
        return [(self._id(searcher, addrs[i]), score) for score, i in scored]

    def announced_between(
        self,
        query: Query,
        aliases: Mapping[str, Sequence[str]],
        since: datetime,
        until: datetime,
        limit: int,
    ) -> tuple[list[tuple[str, float]], int]:
        """The `limit` best (id, BM25 score) of the papers matching `query` that were
        announced in [since, until], and how many match in all. A digest asks this per topic:
        a range on the `announced` fast field, so a window's papers are never loaded."""
        compiled = self.compile(query, aliases)
        if compiled is None or limit <= 0:
            return [], 0
        window = TQuery.range_query(
            self.schema, "announced", FieldType.Integer, _seconds(since), _seconds(until)
        )
        if self._pending:
            self.flush()
        searcher = self._index.searcher()
        result = searcher.search(
            TQuery.boolean_query([(Occur.Must, compiled), (Occur.Must, window)]),
            limit,
            count=True,
        )
        hits = [(self._id(searcher, addr), float(score)) for score, addr in result.hits]
        return hits, int(getattr(result, "count", None) or 0)  # the stubs omit `count`

    def _sort_bar(self, searcher: Any, field: str) -> int | None:
        """The value of `field` of the SORT_HEAD-th highest paper (cached per commit), or
        None when the index is too small for the shortcut to pay."""
        cached = self._bars.get(field)
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        bar: int | None = None
        if searcher.num_docs > 4 * SORT_HEAD:
            hits = searcher.search(
                TQuery.all_query(), SORT_HEAD, count=False, order_by_field=field, order=Order.Desc
            ).hits
            if len(hits) == SORT_HEAD:
                bar = int(hits[-1][0])
        self._bars[field] = (self._generation, bar)
        return bar

    @staticmethod
    def _id(searcher: Any, addr: Any) -> str:
        return str(searcher.doc(addr).get_first("id"))

    # ---------------------------------------------------------------- compiling

    def compile(self, query: Query, aliases: Mapping[str, Sequence[str]]) -> Any | None:
        """The tantivy query for `query`, or None when it cannot match anything."""
        parts = self._compiler(aliases).parts(query.clauses)
        if parts is None:
            return None
        must = parts.must + self._filters(query)
        if len(must) == 1 and not parts.must_not and not parts.should:
            return must[0]
        return _conjunction(must, parts.must_not, parts.should)

    def compile_relaxed(self, query: Query, aliases: Mapping[str, Sequence[str]]) -> Any | None:
        """Papers matching most of the query's typed words (and every other part: author:,
        cat:, phrases, filters), or None when there is nothing to relax."""
        parts = self._compiler(aliases).parts(query.clauses)
        if parts is None:
            return None
        words = parts.words
        n = len(words)
        if n < 2 or n > MAX_RELAX_WORDS:
            return None
        need = 1 if n == 2 else n // 2 + 1
        combos = [
            TQuery.boolean_query([(Occur.Must, q) for q in combo])
            for combo in itertools.combinations(words, need)
        ]
        relaxed = combos[0] if len(combos) == 1 else _should(combos)
        must = [relaxed, *parts.fixed, *self._filters(query)]
        return _conjunction(must, parts.must_not, parts.should)

    def _compiler(self, aliases: Mapping[str, Sequence[str]]) -> _Compiler:
        # The store hands out the same mapping until it mines new aliases: build the table
        # (curated list + mined pairs, analysed) once per mapping, not once per search.
        cached = self._alias_table
        if cached is None or cached[0] is not aliases:
            cached = (aliases, build_alias_table(aliases, self._analyzers[_EN].analyze))
            self._alias_table = cached
            self._alias_version += 1
        return _Compiler(
            self.schema, self._analyzers, cached[1], doc_freq=self._index.searcher().doc_freq
        )

    def _filters(self, query: Query) -> list[Any]:
        out = []
        if query.since is not None or query.until is not None:
            out.append(
                TQuery.range_query(
                    self.schema,
                    "published",
                    FieldType.Integer,
                    _seconds(query.since) if query.since else None,
                    _seconds(query.until) if query.until else None,
                    include_lower=True,
                    include_upper=query.until is None,
                )
            )
        if query.upvotes is not None:
            low, high = query.upvotes.bounds()
            if high is not None and low is not None and high < low:
                out.append(TQuery.empty_query())
            elif low is not None or high is not None:
                out.append(TQuery.range_query(self.schema, "upvotes", FieldType.Integer, low, high))
        return out


class _Compiler:
    """AST -> tantivy query objects. Words are analysed with the index's own analysers.

    Consecutive words form a *run* ("vision language models"). Each word must match, in any
    text field, either as typed or in one of its alias forms: an acronym finds its expansion
    as a phrase (a small slop, never loose words), an expansion typed as words finds its
    acronym (`DisMax`, so a paper with both forms is not counted twice). A run of several
    words also adds optional phrase clauses (title, keywords, abstract): papers where the
    words stand together, in the title first, score above papers where they are scattered.
    """

    def __init__(
        self,
        schema: Any,
        analyzers: dict[str, Any],
        aliases: AliasTable,
        fields: tuple[tuple[str, float], ...] = FULL,
        doc_freq: Callable[[str, str], int] | None = None,
    ) -> None:
        self.schema = schema
        self.text_fields = fields
        self.en = analyzers[_EN]
        self.name = analyzers[_NAME]
        self.aliases = aliases
        self.doc_freq = doc_freq

    def node(self, node: Node) -> Any | None:
        if isinstance(node, Word):
            return self.word(node.text)
        if isinstance(node, Phrase):
            return self.word(node.text, slop=0)  # "quoted": other forms exact too
        if isinstance(node, Author):
            tokens = self.name.analyze(node.name)
            return self.field_text("authors", tokens) if tokens else None
        if isinstance(node, Category):
            return TQuery.term_query(self.schema, "categories", node.code)
        if isinstance(node, AnyOf):
            options = [q for q in (self.node(o) for o in node.options) if q is not None]
            return _should(options)
        if isinstance(node, AllOf):
            compiled = self.parts(node.parts)
            if compiled is None:
                return None
            return _conjunction(compiled.must, compiled.must_not, compiled.should)
        return None

    def parts(self, parts: Sequence[Node]) -> _Parts | None:
        """The clauses of parts that must all match. Negated parts are looked up in every
        field. None when a part cannot match (only stop-characters, say): all parts must
        match, so the whole cannot either."""
        out = _Parts()
        run: list[str] = []

        def end_run() -> bool:
            if run:
                units = self.run(run)
                if units is None:
                    return False
                out.must.extend(units)
                out.words.extend(self.loose_words(run))
                out.should.extend(self.proximity(run))
                run.clear()
            return True

        for part in parts:
            if isinstance(part, Word):
                run.append(part.text)
                continue
            if not end_run():
                return None
            if isinstance(part, Not):
                negated = self.node(part.node)
                if negated is not None:
                    out.must_not.append(negated)
                continue
            compiled = self.node(part)
            if compiled is None:
                return None
            out.must.append(compiled)
            out.fixed.append(compiled)
        if not end_run():
            return None
        return out

    # -------------------------------------------------------------- words and runs

    def run(self, words: Sequence[str]) -> list[Any] | None:
        """One required clause per word, or per group of words that spells an acronym out.

        Function words ("of", "for") are not required when the run has other words: nearly
        every paper has them, so they cost a dense intersection and tell nothing; they still
        count as gaps in the proximity phrases."""
        tokens = [self.en.analyze(w) for w in words]
        if not all(tokens):
            return None
        needed = [not _is_function(t) for t in tokens]
        if not any(needed):
            needed = [True] * len(tokens)
        units: list[Any] = []
        i = 0
        while i < len(words):
            span = self._alias_span(tokens, i)
            if span > 1:
                typed = [
                    self.word_tokens(tokens[k], words[k]) for k in range(i, i + span) if needed[k]
                ]
                flat = tuple(t for part in tokens[i : i + span] for t in part)
                alternatives = [_all(typed)]
                alternatives += [self.form(o) for o in _distinct(self.aliases.others(flat))]
                units.append(_best(alternatives))
                i += span
            else:
                if needed[i]:
                    units.append(self.word_tokens(tokens[i], words[i]))
                i += 1
        return units

    def loose_words(self, words: Sequence[str]) -> list[Any]:
        """The run's words one by one, function words left out (what relaxation drops)."""
        kept = [w for w in words if not _is_function(self.en.analyze(w))]
        return [q for q in (self.word(w) for w in kept) if q is not None]

    def _alias_span(self, tokens: Sequence[list[str]], start: int) -> int:
        """How many words from `start` spell one alias form together (0 or 1: none)."""
        longest = self.aliases.longest
        for end in range(len(tokens), start + 1, -1):
            flat = tuple(t for part in tokens[start:end] for t in part)
            if len(flat) <= longest and self.aliases.others(flat):
                return end - start
        return 0

    def word(self, text: str, slop: int = ALIAS_SLOP) -> Any | None:
        tokens = self.en.analyze(text)
        return self.word_tokens(tokens, text, slop) if tokens else None

    def word_tokens(self, tokens: list[str], text: str, slop: int = ALIAS_SLOP) -> Any:
        """A word (or a quoted phrase) as typed, in any field, or in any of its alias forms
        (those with at most `slop` words in between)."""
        typed = self.fields(tokens, self.name.analyze(text), slop=0)
        alternatives = [_should(typed)]
        alternatives += [self.form(other, slop) for other in _variants(tokens, self.aliases)]
        return _best(alternatives)

    def form(self, tokens: Sequence[str], slop: int = ALIAS_SLOP) -> Any:
        """Another form of what was typed (an acronym, an expansion): text fields only."""
        return _should(self.fields(list(tokens), [], slop=slop))

    def fields(self, tokens: list[str], name_tokens: list[str], slop: int) -> list[Any]:
        clauses = []
        for field, boost in self.text_fields:
            query = self.field_text(field, tokens, slop)
            clauses.append(query if boost == 1.0 else TQuery.boost_query(query, boost))
        if name_tokens and self.text_fields == FULL:
            clauses.append(
                TQuery.boost_query(self.field_text("authors", name_tokens), BOOSTS["authors"])
            )
        return clauses

    def field_text(self, field: str, tokens: list[str], slop: int = 0) -> Any:
        if len(tokens) == 1:
            plural = _plural_variant(tokens[0]) if field != "authors" else None
            term = TQuery.term_query(self.schema, field, tokens[0])
            if plural is None:
                return term
            return _should([term, TQuery.term_query(self.schema, field, plural)])
        return TQuery.phrase_query(self.schema, field, _phrase_words(tokens), slop)

    def proximity(self, words: Sequence[str]) -> list[Any]:
        """Optional clauses that reward the run's words standing together (or a paper
        using an acronym the words spell out: the same evidence, in one word)."""
        tokens = [t for w in words for t in self.en.analyze(w)]
        if len([t for t in tokens if t not in _FUNCTION_WORDS]) < 2:
            return []
        content = [t for t in tokens if t not in _FUNCTION_WORDS]
        # The whole run as a phrase, and (for three words or more) each pair of neighbouring
        # words: "direct preference alignment" is closer to "direct preference
        # optimization" than a paper with the three words apart.
        phrases = [_phrase_words(tokens)]
        if len(content) > 2:
            phrases += [[a, b] for a, b in itertools.pairwise(content)]
        out = []
        for phrase in phrases:
            for field, slop, boost in PROXIMITY:
                if self._too_common(field, phrase):
                    continue
                query = TQuery.phrase_query(self.schema, field, phrase, slop)
                out.append(TQuery.boost_query(query, boost))
        analysed = [self.en.analyze(w) for w in words]
        i = 0
        while i < len(words):
            span = self._alias_span(analysed, i)
            if span > 1:
                flat = tuple(t for part in analysed[i : i + span] for t in part)
                out += [self.form(o) for o in self.aliases.others(flat) if len(o) == 1]
            i += max(span, 1)
        return out

    def _too_common(self, field: str, phrase: Sequence[str | tuple[int, str]]) -> bool:
        """Is every word of this proximity phrase in more than `PROXIMITY_MAX_DF` papers'
        `field`? Then checking positions means reading them for most of the index (tens of
        ms at 1M papers) to reorder papers that all have the words anyway: left out. Rarer
        words, and every title and keyword phrase, keep their proximity evidence."""
        if self.doc_freq is None or field in ("title", "keywords"):
            return False
        words = [w if isinstance(w, str) else w[1] for w in phrase]
        return all(self.doc_freq(field, w) > PROXIMITY_MAX_DF for w in words)


@dataclasses.dataclass
class _Parts:
    """Compiled parts of a query or ( group ) that must all match."""

    must: list[Any] = dataclasses.field(default_factory=list)  # every required clause
    words: list[Any] = dataclasses.field(default_factory=list)  # the typed words, one clause each
    # required and not a typed word (author:, cat:, "phrases", groups): never relaxed
    fixed: list[Any] = dataclasses.field(default_factory=list)
    must_not: list[Any] = dataclasses.field(default_factory=list)
    should: list[Any] = dataclasses.field(default_factory=list)  # scoring only (proximity)


def _phrase_words(tokens: Sequence[str]) -> list[str | tuple[int, str]]:
    # Function words in a longer phrase are left out, keeping their positions: "learning
    # from human feedback" still needs the gap, but never intersects the postings of
    # "from", which nearly every paper has.
    kept = [(i, t) for i, t in enumerate(tokens) if t not in _FUNCTION_WORDS]
    if len(kept) < 2 or len(tokens) < 3:
        kept = list(enumerate(tokens))
    return list(kept)


def _variants(tokens: Sequence[str], aliases: AliasTable) -> list[Tokens]:
    """`tokens` with one alias form replaced by another: kv -> key value, kv cache ->
    key value cache (a hyphenated word), llms -> large language model."""
    out: list[Tokens] = []
    n = len(tokens)
    for start in range(n):
        for end in range(min(n, start + aliases.longest), start, -1):
            part = tuple(tokens[start:end])
            others = aliases.others(part) or aliases.others(_singular(part))
            if others:
                out += [(*tokens[:start], *o, *tokens[end:]) for o in others]
                break
    return _distinct(out)[:MAX_EXPANSIONS]


_VOWELS = frozenset("aeiouy")


def _distinct(forms: Sequence[Tokens]) -> list[Tokens]:
    """Forms that compile to different queries: "reinforcement learning from / with human
    feedback" are one phrase once function words are gaps, and cost as much twice."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for form in forms:
        key = tuple(_phrase_words(form)) if len(form) > 1 else tuple(form)
        if key not in seen:
            seen.add(key)
            out.append(form)
    return out


def _plural_variant(token: str) -> str | None:
    """The stemmer leaves "llms" and "vlms" alone (no vowel); the other number of such an
    acronym-like token is matched too."""
    if len(token) < 2 or any(c in _VOWELS for c in token[:-1]) or not token.isalnum():
        return None
    if token.endswith("s") and len(token) >= 3:
        return token[:-1]
    return token + "s"


def _singular(tokens: Tokens) -> Tokens:
    if len(tokens) == 1:
        other = _plural_variant(tokens[0])
        if other is not None and tokens[0].endswith("s"):
            return (other,)
    return tokens


def _is_function(tokens: Sequence[str]) -> bool:
    return all(t in _FUNCTION_WORDS for t in tokens)


def _all(clauses: list[Any]) -> Any:
    if len(clauses) == 1:
        return clauses[0]
    return TQuery.boolean_query([(Occur.Must, q) for q in clauses])


def _best(alternatives: list[Any]) -> Any:
    """The best-scoring of several forms of one thing (plus a little for the others)."""
    if len(alternatives) == 1:
        return alternatives[0]
    return TQuery.disjunction_max_query(alternatives, tie_breaker=ALIAS_TIE)


def _conjunction(must: list[Any], must_not: list[Any], should: list[Any]) -> Any:
    if not must:
        must = [TQuery.all_query()]
    if len(must) == 1 and not must_not and not should:
        return must[0]
    return TQuery.boolean_query(
        [(Occur.Must, q) for q in must]
        + [(Occur.MustNot, q) for q in must_not]
        + [(Occur.Should, q) for q in should]
    )


_FUNCTION_WORDS = frozenset(
    "a an and are as at be by for from in into is of on or the to via with".split()
)


def _should(clauses: list[Any]) -> Any | None:
    clauses = [c for c in clauses if c is not None]
    if not clauses:
        return None
    if len(clauses) == 1:
        return clauses[0]
    return TQuery.boolean_query([(Occur.Should, c) for c in clauses])


def _to_hour(now: datetime) -> datetime:
    """`now` to the hour: recency moves on a scale of months, and cached answers stay exact."""
    return now.replace(minute=0, second=0, microsecond=0)


def _blend(bm25: float, upvotes: int, age_days: float) -> float:
    """Relevance first; upvotes (log) and recency (half-life ~6 months) lift it gently."""
    popularity = 1.0 + POPULARITY * math.log1p(max(upvotes, 0))
    freshness = 1.0 - FRESHNESS + FRESHNESS * math.pow(2.0, -max(age_days, 0.0) / 180.0)
    return bm25 * popularity * freshness


_ROW_FIELDS = (
    "id",
    "title",
    "abstract",
    "authors",
    "categories",
    "ai_keywords",
    "published_at",
    "hf_daily_date",
    "first_seen_at",
    "updated_at",
    "announced_at",
    "upvotes",
)


def _fields(paper: Paper | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(paper, Mapping):
        return paper
    return {name: getattr(paper, name) for name in _ROW_FIELDS}


def _appeared(row: Mapping[str, Any]) -> datetime:
    """When a paper appeared: published, else its Daily Papers date, else first seen."""
    if row.get("published_at") is not None:
        return row["published_at"]
    day = row.get("hf_daily_date")
    if day is not None:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return row["first_seen_at"]


def paper_time(paper: Paper) -> datetime:
    """When a paper appeared, as the index orders and filters it (`since:`, `sort:new`)."""
    return _aware(_appeared(_fields(paper)))


def _aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; they are UTC."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _seconds(when: datetime) -> int:
    return int(_aware(when).timestamp())


def _no_panic(
    compute: Callable[[], list[tuple[str, float]]],
) -> Callable[[], list[tuple[str, float]]]:
    """`compute` with tantivy's Rust panics turned into `IndexDamaged`: pyo3's
    `PanicException` derives from BaseException, so `except Exception` above would miss it."""

    def guarded() -> list[tuple[str, float]]:
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
        return crc == expected


def open_index(path: Path | str | None) -> PaperIndex:
    """Open the index at `path` (None: in memory), recreating it empty when it is missing,
    corrupt or of another schema version. The caller then runs `store.sync_index()`."""
    return PaperIndex(path)


def _usable(path: Path) -> bool:
    try:
        state = json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError):
        # No state file: a fresh directory is fine, an index without our state is not ours.
        return not any(path.iterdir())
    if not isinstance(state, dict) or state.get("schema") != SCHEMA_VERSION:
        return False
    try:
        return bool(tantivy.Index.exists(str(path)))
    except (ValueError, OSError):
        return False
