"""The full-text index: a tantivy index in the data directory that follows the store.

`PaperIndex` holds one document per paper (replaced by id on every upsert), answers a parsed
`bot.search.Query` with ranked `(id, score)` pairs, and remembers the `(updated_at, id)` of the
last paper it applied (a small JSON file beside the index) so `PaperStore.sync_index` catches
up only what changed while it was closed. The SQL store stays the source of truth: a missing,
corrupt or outdated index is simply rebuilt (`open_index`).

Queries are compiled from the AST into tantivy query objects (term, phrase, boolean, range,
boost); user text is never turned into a query string. Ranking: BM25 with field boosts
(title > keywords > abstract > authors), then the best ~100 are re-ranked in Python with
upvotes and recency. tantivy prunes top-k (block-max WAND) for disjunctions of terms; filters
and `sort:new|top` read fast fields.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
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
SCHEMA_VERSION = 2
STATE_FILE = "paperboy-index.json"

# Field boosts: a word in the title counts most, then keywords, abstract, authors.
BOOSTS = {"title": 3.0, "keywords": 2.0, "abstract": 1.0, "authors": 0.6}
TEXT_FIELDS = ("title", "keywords", "abstract")
FULL = tuple((name, BOOSTS[name]) for name in TEXT_FIELDS)
# `head` holds the title (twice, so it outweighs keywords) and the keywords: a small field.
HEAD = (("head", 1.0),)
RERANK_DEPTH = 60  # BM25 hits re-ranked with upvotes and recency
HEAD_ENOUGH = 20  # head-tier hits that make the full-text tier unnecessary
SORT_HEAD = 2_000  # sort:new|top look among this many newest / most upvoted papers first
MAX_EXPANSIONS = 3  # acronym expansions per word
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
        self._cursor: tuple[datetime | None, str] = (None, "")
        self._pending = 0  # documents upserted but not committed yet
        self._pending_ids: set[str] = set()
        self._generation = 0  # bumped on every commit
        self._bars: dict[str, tuple[int, int | None]] = {}
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
            self._index = tantivy.Index(self.schema, path=str(path), reuse=True)
            self._cursor = self._read_cursor()
        for name, analyzer in self._analyzers.items():
            self._index.register_tokenizer(name, analyzer)
        self._index.reload()

    # ------------------------------------------------------------------ writing

    def upsert(self, papers: Sequence[Paper | Mapping[str, Any]]) -> None:
        """Replace the documents of these papers (by id). `papers` are `Paper`s or store rows.

        The commit is deferred to `flush()` (the store calls it at the end of each
        `upsert_many` / `sync_index`), to the next read (`search`, `doc_count`), or to
        every `COMMIT_EVERY` documents: a bulk import commits a few times instead of once per
        2,000-paper batch. The cursor file only moves on commit, so a crash before it costs a
        catch-up, never a lost paper.
        """
        if not papers:
            return
        with self._lock:
            try:
                writer = self._get_writer()
            except ValueError as exc:
                # Another process holds this index's writer lock (say `paperboy search` while
                # `paperboy run` is up). Skip: the cursor does not move, so the next sync of
                # this index catches up, and searches meanwhile see the committed state.
                logger.warning("search index %s is busy (%s); not updated now", self.path, exc)
                return
            searcher = self._index.searcher()
            pending = self._pending_ids
            last = self._cursor
            for paper in papers:
                row = _fields(paper)
                key = row["id"].lower()
                # A delete costs more than indexing a small document; only papers already in
                # the index (committed, or queued since the last commit) need one.
                if key in pending or searcher.doc_freq("id", key):
                    writer.delete_documents_by_term("id", key)
                pending.add(key)
                writer.add_document(self._document(row))
                mark = (_aware(row["updated_at"]), row["id"])
                if last[0] is None or mark > (last[0], last[1]):
                    last = mark
            self._cursor = last
            self._pending += len(papers)
            if self._pending >= COMMIT_EVERY:
                self._commit()

    def flush(self) -> None:
        """Commit what `upsert` queued and make it searchable."""
        with self._lock:
            if self._pending:
                self._commit()

    def _commit(self) -> None:
        self._writer.commit()
        self._index.reload()
        self._pending = 0
        self._pending_ids = set()
        self._generation += 1
        self._write_cursor()

    def clear(self) -> None:
        """Drop every document and forget the cursor (a rebuild follows)."""
        with self._lock:
            writer = self._get_writer()
            writer.delete_all_documents()
            self._cursor = (None, "")
            self._commit()

    def cursor(self) -> tuple[datetime | None, str]:
        """(updated_at, id) of the last paper applied; (None, "") for an empty index."""
        return self._cursor

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
        return doc

    def _read_cursor(self) -> tuple[datetime | None, str]:
        assert self.path is not None
        try:
            state = json.loads((self.path / STATE_FILE).read_text())
            when = state.get("updated_at")
            return (
                _aware(datetime.fromisoformat(when)) if when else None,
                str(state.get("id", "")),
            )
        except (OSError, ValueError, AttributeError):
            return (None, "")

    def _write_cursor(self) -> None:
        if self.path is None:
            return
        when, pid = self._cursor
        state = {
            "schema": SCHEMA_VERSION,
            "updated_at": when.isoformat() if when else None,
            "id": pid,
        }
        tmp = self.path / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path / STATE_FILE)  # atomic: never a half-written cursor

    # ------------------------------------------------------------------ reading

    def probe(self) -> None:
        """Read one document: raises if the index files are unreadable."""
        searcher = self._index.searcher()
        for _, addr in searcher.search(TQuery.all_query(), 1, count=False).hits:
            searcher.doc(addr)

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
        """Ranked (paper id, score) for `query`, best first, at most `limit`."""
        if limit <= 0 or query.is_empty():
            return []
        compiled = self.compile(query, aliases)
        if compiled is None:
            return []
        if self._pending:
            self.flush()
        searcher = self._index.searcher()
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
        depth = max(RERANK_DEPTH, limit * 2)
        # Two tiers. Conjunctions of common words cannot be pruned (tantivy has block-max
        # WAND for disjunctions only), and intersecting dense abstract postings at 1M papers
        # costs tens of ms. Papers with every word in the title or keywords are the best
        # answers anyway, and that field is small: when it has enough hits, they are the
        # result; otherwise (rare words, names, small stores) the full-text query runs.
        hits = []
        head = self.compile(query, aliases, fields=HEAD)
        if head is not None:
            hits = searcher.search(head, depth, count=False).hits
        if len(hits) < max(HEAD_ENOUGH, limit):
            hits = searcher.search(compiled, depth, count=False).hits
        if not hits:
            return []
        addrs = [addr for _, addr in hits]
        upvotes = searcher.fast_field_values("upvotes", addrs)
        published = searcher.fast_field_values("published", addrs)
        now_s = now.timestamp()
        scored = sorted(
            (
                (_blend(score, int(up or 0), (now_s - (pub or 0)) / 86_400.0), i)
                for i, ((score, _), up, pub) in enumerate(
                    zip(hits, upvotes, published, strict=True)
                )
            ),
            key=lambda pair: (-pair[0], pair[1]),
        )[:limit]
        return [(self._id(searcher, addrs[i]), score) for score, i in scored]

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

    def compile(
        self,
        query: Query,
        aliases: Mapping[str, Sequence[str]],
        fields: tuple[tuple[str, float], ...] = FULL,
    ) -> Any | None:
        """The tantivy query for `query`, or None when it cannot match anything.

        Words and phrases are looked up in `fields` (with their boosts; authors too when
        searching the full text); exclusions always look everywhere.
        """
        compiler = _Compiler(self.schema, self._analyzers, aliases, fields)
        compiled = compiler.parts(query.clauses)
        if compiled is None:
            return None
        must, must_not = compiled
        filters = self._filters(query)
        if not must and not filters:
            must.append(TQuery.all_query())
        if len(must) == 1 and not filters and not must_not:
            return must[0]  # keep a bare disjunction of terms: tantivy prunes it with WAND
        subqueries = [(Occur.Must, q) for q in must]
        subqueries += [(Occur.Must, q) for q in filters]
        subqueries += [(Occur.MustNot, q) for q in must_not]
        return TQuery.boolean_query(subqueries)

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
    """AST -> tantivy query objects. Words are analysed with the index's own analysers."""

    def __init__(
        self,
        schema: Any,
        analyzers: dict[str, Any],
        aliases: Mapping[str, Sequence[str]],
        fields: tuple[tuple[str, float], ...],
    ) -> None:
        self.schema = schema
        self.text_fields = fields
        self.en = analyzers[_EN]
        self.name = analyzers[_NAME]
        self.aliases = aliases

    def node(self, node: Node) -> Any | None:
        if isinstance(node, Word):
            return self.text(node.text, expand=True)
        if isinstance(node, Phrase):
            return self.text(node.text, expand=True)
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
            must, must_not = compiled
            if not must:
                must.append(TQuery.all_query())
            if len(must) == 1 and not must_not:
                return must[0]
            return TQuery.boolean_query(
                [(Occur.Must, q) for q in must] + [(Occur.MustNot, q) for q in must_not]
            )
        return None

    def parts(self, parts: Sequence[Node]) -> tuple[list[Any], list[Any]] | None:
        """(must, must_not) for parts that must all match; negated parts are looked up in
        every field. None when a part cannot match (only stop-characters, say): all parts
        must match, so the whole cannot either."""
        full = self
        if self.text_fields != FULL:
            analyzers = {_EN: self.en, _NAME: self.name}
            full = _Compiler(self.schema, analyzers, self.aliases, FULL)
        must: list[Any] = []
        must_not: list[Any] = []
        for part in parts:
            if isinstance(part, Not):
                negated = full.node(part.node)
                if negated is not None:
                    must_not.append(negated)
                continue
            compiled = self.node(part)
            if compiled is None:
                return None
            must.append(compiled)
        return must, must_not

    def text(self, text: str, *, expand: bool) -> Any | None:
        """A word or phrase in any text field (boosted per field), or any of its aliases."""
        tokens = self.en.analyze(text)
        if not tokens:
            return None
        clauses = self.fields(tokens, self.name.analyze(text))
        if expand:
            for other in list(self.aliases.get(text.lower(), ()))[:MAX_EXPANSIONS]:
                alt = self.text(other, expand=False)
                if alt is not None:
                    clauses.append(alt)
        return _should(clauses)

    def fields(self, tokens: list[str], name_tokens: list[str]) -> list[Any]:
        clauses = []
        for field, boost in self.text_fields:
            query = self.field_text(field, tokens)
            clauses.append(query if boost == 1.0 else TQuery.boost_query(query, boost))
        if name_tokens and self.text_fields == FULL:
            clauses.append(
                TQuery.boost_query(self.field_text("authors", name_tokens), BOOSTS["authors"])
            )
        return clauses

    def field_text(self, field: str, tokens: list[str]) -> Any:
        if len(tokens) == 1:
            return TQuery.term_query(self.schema, field, tokens[0])
        # Function words in a longer phrase are left out, keeping their positions: "learning
        # from human feedback" still needs the gap, but never intersects the postings of
        # "from", which nearly every paper has.
        kept = [(i, t) for i, t in enumerate(tokens) if t not in _FUNCTION_WORDS]
        if len(kept) < 2 or len(tokens) < 3:
            kept = list(enumerate(tokens))
        words: list[str | tuple[int, str]] = list(kept)
        return TQuery.phrase_query(self.schema, field, words)


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


def _blend(bm25: float, upvotes: int, age_days: float) -> float:
    """Relevance first; upvotes (log) and recency (half-life ~6 months) lift it gently."""
    popularity = 1.0 + 0.12 * math.log1p(max(upvotes, 0))
    freshness = 0.8 + 0.2 * math.pow(2.0, -max(age_days, 0.0) / 180.0)
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
