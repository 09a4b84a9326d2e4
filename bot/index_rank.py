"""Reading the index: top hits by relevance (BM25 lifted by upvotes and recency) or by a fast
field (`sort:new|top`), and the cache of recent answers."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from tantivy import FieldType, Occur, Order, Query as TQuery

from bot.index_compile import Compiler
from bot.index_schema import Ranked
from bot.query import Query

RERANK_DEPTH = 60  # BM25 hits re-ranked with upvotes and recency
CANDIDATES = 3  # head-first: deferred clauses score this many times the re-rank depth
SORT_HEAD = 2_000  # sort:new|top look among this many newest / most upvoted papers first
POPULARITY = 0.12  # weight of log(1 + upvotes / UPVOTES_SCALE) in the final score
# A handful of upvotes is what any paper on the Daily Papers list gets; tens and hundreds set
# a paper apart. Below this many the lift stays small (2 upvotes: +2%, 100: +29%).
UPVOTES_SCALE = 10.0
FRESHNESS = 0.2  # share of the score that decays with age (half-life 180 days)


def to_hour(now: datetime) -> datetime:
    """`now` to the hour: recency moves on a scale of months, and cached answers stay exact."""
    return now.replace(minute=0, second=0, microsecond=0)


def blend(bm25: float, upvotes: int, age_days: float) -> float:
    """Relevance first; upvotes (log) and recency (half-life ~6 months) lift it gently."""
    popularity = 1.0 + POPULARITY * math.log1p(max(upvotes, 0) / UPVOTES_SCALE)
    freshness = 1.0 - FRESHNESS + FRESHNESS * math.pow(2.0, -max(age_days, 0.0) / 180.0)
    return bm25 * popularity * freshness


def doc_id(searcher: Any, addr: Any) -> str:
    return str(searcher.doc(addr).get_first("id"))


def ranked(
    searcher: Any, compiled: Any, limit: int, now: datetime, fresh: bool = True
) -> list[Ranked]:
    """The top `RERANK_DEPTH` BM25 hits of `compiled`, re-ranked (`blend_top`)."""
    return blend_top(searcher, bm25_hits(searcher, compiled, limit), limit, now, fresh)


def bm25_hits(searcher: Any, compiled: Any, limit: int) -> list[Any]:
    """The (score, address) pairs the re-rank looks at for `limit` answers, best first."""
    hits: list[Any] = searcher.search(compiled, depth_for(limit), count=False).hits
    return hits


def depth_for(limit: int) -> int:
    """How many BM25 hits are re-ranked for `limit` answers."""
    return max(RERANK_DEPTH, limit * 2)


def head_first(searcher: Any, schema: Any, head: Any, split: Split, limit: int) -> list[Any] | None:
    """The top BM25 hits of a query split into `head` (the query without its dense
    lookups and phrases) and `split` (those), or None when this cannot stand for the full
    query.

    At 1M papers "model" is in over half the abstracts, and scoring every match of two such
    words costs 10-20 ms: tantivy prunes neither conjunctions nor unions; a phrase reads the
    positions of every paper that has its words. A word that common weighs little in an
    abstract (low IDF), so the head query finds the papers that have each word in a title,
    keywords or authors (or rare enough in an abstract), and each dense lookup is an
    optional part of its form (`Compiler.with_optional`): a seek per head match instead of
    a scan of its posting list, scored where the full query scores it (inside the best-of
    of a word's alias forms), so a paper the head query finds scores as in the full query
    (the phrases of `split.later` aside). `split.later` (proximity
    phrases of common words, a typed phrase of very common words: a bonus that weighs
    little) is scored for the best `CANDIDATES` x the re-rank depth papers only, each
    clause looked up among those papers. A paper whose only match for a word is a dense
    lookup is not seen, so when the head query finds fewer papers than the re-rank looks
    at, the caller runs the full query."""
    depth = depth_for(limit)
    hits: list[Any] = searcher.search(
        head, depth * CANDIDATES if split.later else depth, count=False
    ).hits
    if len(hits) < depth:
        return None
    if split.later:
        hits = _with_deferred(searcher, schema, hits, split.later)
    return hits[:depth]


def _with_deferred(searcher: Any, schema: Any, hits: list[Any], deferred: list[Any]) -> list[Any]:
    """`hits` with the scores of the deferred clauses added, best first. Each clause is
    looked up among these papers only: their ids lead the intersection (a zero-weight id
    set, so the score is the clause's alone), and a clause is never part of a union,
    which would read its matches far beyond these papers."""
    keys = [_key(addr) for _, addr in hits]
    total = {key: float(score) for key, (score, _) in zip(keys, hits, strict=True)}
    among = only(schema, [doc_id(searcher, addr) for _, addr in hits])
    for clause in deferred:
        query = TQuery.boolean_query([(Occur.Must, among), (Occur.Must, clause)])
        for score, addr in searcher.search(query, len(hits), count=False).hits:
            total[_key(addr)] += float(score)
    order = sorted(range(len(hits)), key=lambda i: (-total[keys[i]], i))
    return [(total[keys[i]], hits[i][1]) for i in order]


def only(schema: Any, ids: list[str]) -> Any:
    """These papers only, scoring nothing (weight 0), to lead an intersection: a union of id
    lookups (a term set query would build a bitset the size of each segment)."""
    lookups = [(Occur.Should, TQuery.term_query(schema, "id", key.lower())) for key in ids]
    return TQuery.boost_query(TQuery.boolean_query(lookups), 0.0)


class Split(NamedTuple):
    """What head-first scoring leaves out of the head query (`head_first`)."""

    dense: list[Any]  # dense lookups, each an optional part of its form in the head query
    later: list[Any]  # phrases: scored for the best head matches only


class Plan(NamedTuple):
    """A compiled query (None: it cannot match) and, in head-first mode, what it left out."""

    query: Any | None
    split: Split


def plan(compiler: Compiler, kind: str, query: Query) -> Plan:
    """`query` compiled by `compiler` as `kind`: "full", "sparse" (the full query when its
    words are rare enough to lead a date window), "head" (head-first: the compiler has its
    `dense_df`) or "most" (relaxed). The index remembers plans until its next commit: a
    repeated search (a team's usual topics) skips the compiler, which can cost as much as a
    fast search."""
    compiler.window_leads = kind != "sparse"
    if kind == "most":
        return Plan(compiler.relaxed(query), Split([], []))
    compiled = compiler.query(query)
    return Plan(compiled, Split(compiler.dense, compiler.later))


def _key(addr: Any) -> tuple[int, int]:
    return int(addr.segment_ord), int(addr.doc)


def blend_top(
    searcher: Any, hits: list[Any], limit: int, now: datetime, fresh: bool = True
) -> list[Ranked]:
    """BM25 hits re-ranked with upvotes and recency: the best `limit`.

    The lift only reorders the top BM25 hits: proving that no paper further down could climb
    in would mean going thousands deep for common words. With `fresh` False (a `since:`
    window: the reader already chose the period) age does not lift a paper; upvotes still
    do."""
    if not hits:
        return []
    addrs = [addr for _, addr in hits]
    upvotes = searcher.fast_field_values("upvotes", addrs)
    published = searcher.fast_field_values("published", addrs)
    now_s = now.timestamp()
    scored = sorted(
        (
            (blend(score, int(up or 0), (now_s - (pub or 0)) / 86_400.0 if fresh else 0.0), i)
            for i, ((score, _), up, pub) in enumerate(zip(hits, upvotes, published, strict=True))
        ),
        key=lambda pair: (-pair[0], pair[1]),
    )[:limit]
    return [Ranked(doc_id(searcher, addrs[i]), score) for score, i in scored]


class SortBars:
    """Per commit, the value of a fast field at the `SORT_HEAD`-th highest paper.

    Ordering by a fast field visits every match. Most queries find their newest (most
    upvoted) papers among the newest (most upvoted) `SORT_HEAD` of the whole index, a small
    posting list to intersect with: that is tried first. A paper below the bar ranks below
    every paper above it, so the answer stays exact."""

    def __init__(self) -> None:
        self._bars: dict[str, tuple[int, int | None]] = {}

    def clear(self) -> None:
        self._bars.clear()

    def bar(self, searcher: Any, field: str, generation: int) -> int | None:
        """None when the index is too small for the shortcut to pay."""
        cached = self._bars.get(field)
        if cached is not None and cached[0] == generation:
            return cached[1]
        bar: int | None = None
        if searcher.num_docs > 4 * SORT_HEAD:
            hits = searcher.search(
                TQuery.all_query(), SORT_HEAD, count=False, order_by_field=field, order=Order.Desc
            ).hits
            if len(hits) == SORT_HEAD:
                bar = int(hits[-1][0])
        self._bars[field] = (generation, bar)
        return bar

    def by_field(
        self, searcher: Any, schema: Any, compiled: Any, field: str, limit: int, generation: int
    ) -> list[Ranked]:
        """The `limit` matches with the highest `field`, highest first."""
        hits: list[Any] = []
        bar = self.bar(searcher, field, generation)
        if bar is not None:
            recent = TQuery.range_query(
                schema, field, FieldType.Integer, bar, None, use_inverted_index=True
            )
            narrowed = TQuery.boolean_query([(Occur.Must, compiled), (Occur.Must, recent)])
            hits = searcher.search(
                narrowed, limit, count=False, order_by_field=field, order=Order.Desc
            ).hits
        if len(hits) < limit:
            hits = searcher.search(
                compiled, limit, count=False, order_by_field=field, order=Order.Desc
            ).hits
        return [Ranked(doc_id(searcher, addr), float(key)) for key, addr in hits]


class ResultCache:
    """Answers remembered until the index or the alias table changes (`state`).

    Teams repeat their searches (the same topics, the same acronyms). Scores use `now` to
    the hour, so a cached answer is exactly what a fresh search would give. `size` 0: off."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._results: OrderedDict[Hashable, list[Ranked]] = OrderedDict()
        self._state: Hashable = None

    def get(
        self, key: Hashable, state: Hashable, compute: Callable[[], list[Ranked]]
    ) -> list[Ranked]:
        if self.size <= 0:
            return compute()
        with self._lock:
            if self._state != state:
                self._results.clear()
                self._state = state
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
                return list(found)
        result = compute()
        with self._lock:
            if self._state == state:
                self._results[key] = list(result)
                while len(self._results) > self.size:
                    self._results.popitem(last=False)
        return result


V = TypeVar("V")


class Memo(Generic[V]):
    """Values remembered by key until `state` (the index's commit, the alias table) changes,
    the `size` most recently used."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._state: Hashable = None

    def get(self, key: Hashable, state: Hashable, compute: Callable[[], V]) -> V:
        with self._lock:
            if self._state != state:
                self._values.clear()
                self._state = state
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()
        with self._lock:
            if self._state == state and self.size > 0:
                self._values[key] = value
                while len(self._values) > self.size:
                    self._values.popitem(last=False)
        return value
