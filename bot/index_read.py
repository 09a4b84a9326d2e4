"""Reading the full-text index: searches (ranked, relaxed, cached until the next commit),
announcement windows for digests and previews, and compiled queries.

`IndexReader` is the reading half of `bot.index.PaperIndex`, which owns the tantivy index,
its writer and its change-feed position; this half only reads what the other half committed
(and follows another process's commits when `read_only`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tantivy import FieldType, Occur, Query as TQuery

from bot.aliases import AliasTable, build_alias_table
from bot.index_compile import FULL, Compiler
from bot.index_feedback import FEEDBACK_DEPTH, Texts, with_feedback
from bot.index_forms import own_forms
from bot.index_health import no_panic
from bot.index_rank import (
    Memo,
    Plan,
    ResultCache,
    SortBars,
    blend_top,
    bm25_hits,
    head_first,
    plan,
    ranked,
    to_hour,
)
from bot.index_schema import EN, Ranked, en_tokens, seconds
from bot.query import Query, Sort

__all__ = ["Aliases", "Fields", "IndexReader"]

HEAD_FIRST_DOCS = 50_000  # smaller indexes run every query in full (a few ms at most)
# Head-first: an abstract lookup whose rarest word is in more than this share of the papers
# is left out of the query and added as an optional clause (`index_rank.head_first`).
DENSE_SHARE = 0.05
Aliases = Mapping[str, Sequence[str]]
T = TypeVar("T")
Fields = tuple[tuple[str, float], ...]  # (text field, boost) pairs a query looks in


class IndexReader:
    """The reading half of `PaperIndex` (which sets these attributes up and commits)."""

    path: Path | None
    schema: Any
    read_only: bool
    _index: Any
    _analyzers: Any
    _generation: int
    _bars: SortBars
    _alias_table: tuple[Aliases, AliasTable] | None
    _alias_version: int
    _cache: ResultCache
    _plans: Memo[Plan]
    _seen_on_disk: int

    def flush(self) -> None:
        """Commit what was written (the writing half's)."""
        raise NotImplementedError

    def term_stats(self) -> tuple[Callable[[str, str], int], int]:
        """On the current snapshot: (field, analysed token) -> how many documents hold it, and
        how many documents there are (how rare a word is: `bot.taste_rarity`)."""
        searcher = self._index.searcher()
        return searcher.doc_freq, int(searcher.num_docs)

    def doc_count(self) -> int:
        self.flush()
        return int(self._index.searcher().num_docs)

    # ------------------------------------------------------------------ reading

    @property
    def result_cache(self) -> int:
        """Answers kept until the next commit (0: none, every search is computed)."""
        return self._cache.size

    @result_cache.setter
    def result_cache(self, size: int) -> None:
        self._cache.size = size

    @property
    def compiled_cache(self) -> int:
        """Compiled queries kept until the next commit (0: every search compiles)."""
        return self._plans.size

    @compiled_cache.setter
    def compiled_cache(self, size: int) -> None:
        self._plans.size = size

    def search(
        self,
        query: Query,
        aliases: Aliases,
        limit: int,
        now: datetime,
        texts: Texts | None = None,
    ) -> list[Ranked]:
        """Ranked papers for `query`, best first, at most `limit`. With `texts` (the store's
        papers by id), a one-word search is re-ranked by what its best matches share
        (`bot.index_feedback`).

        Raises `IndexDamaged` when tantivy panics on broken files (`index_health.no_panic`)."""
        if limit <= 0 or query.is_empty():
            return []
        now = to_hour(now)
        key = ("all", query, limit, now, texts is not None)
        return self._cached(key, aliases, self._all(query, limit, now, texts))

    def search_relaxed(
        self,
        query: Query,
        aliases: Aliases,
        limit: int,
        now: datetime,
        exclude: Set[str] = frozenset(),
    ) -> list[Ranked]:
        """Papers that match most, not all, of the query's words, best first, leaving out
        `exclude` (the strict matches, which always rank above these)."""
        if limit <= 0 or query.is_empty() or query.sort is not Sort.RELEVANCE:
            return []
        now = to_hour(now)
        key = ("most", query, limit, now, frozenset(exclude))
        return self._cached(key, aliases, self._most(query, limit, now, exclude))

    def announced_per_day(
        self, query: Query, aliases: Aliases, since: datetime, until: datetime
    ) -> list[int]:
        """How many papers matching `query` were announced on each UTC day of [since, until]
        that has any: one histogram over the `announced` fast field, no document read."""
        both = self._announced(query, aliases, since, until)
        if both is None:
            return []
        days = {"days": {"histogram": {"field": "announced", "interval": 86_400}}}
        result = self._index.searcher().aggregate(both, days)
        return [int(b["doc_count"]) for b in result["days"]["buckets"]]

    def announced_query(
        self,
        query: Query,
        aliases: Aliases,
        since: datetime,
        until: datetime,
        fields: Fields = FULL,
    ) -> tuple[Any, Any] | None:
        """(`query` AND announced in [since, until], a searcher), None when the query has
        nothing to look for: for readers of a window beside ranking (`bot.index_window`).
        `fields`: the text fields its words are looked for in (default all, as searches)."""
        both = self._announced(query, aliases, since, until, fields)
        return None if both is None else (both, self._index.searcher())

    def _announced(
        self,
        query: Query,
        aliases: Aliases,
        since: datetime,
        until: datetime,
        fields: Fields = FULL,
    ) -> Any | None:
        """`query` AND announced in [since, until] (None: the query has nothing to look for)."""
        compiled = self._compiler(aliases, fields=fields).query(query)
        if compiled is None:
            return None
        # The window filters and does not score (weight 0): scores of one query in windows
        # of any width compare (the digest's relevance floor, `bot.index_window`).
        window = TQuery.boost_query(
            TQuery.range_query(
                self.schema, "announced", FieldType.Integer, seconds(since), seconds(until)
            ),
            0.0,
        )
        self.flush()
        return TQuery.boolean_query([(Occur.Must, compiled), (Occur.Must, window)])

    def read(self, compute: Callable[[Any], T]) -> T:
        """`compute(searcher)` on the committed state (what `search` reads), for readers
        beside this module that build their own queries (`bot.similar`). Raises
        `IndexDamaged` when tantivy panics."""
        self._follow()
        self.flush()
        return no_panic(lambda: compute(self._index.searcher()))()

    def _cached(
        self, key: tuple[Any, ...], aliases: Aliases, compute: Callable[[], list[Ranked]]
    ) -> list[Ranked]:
        """The answer to `key` from the result cache, else computed (and remembered until the
        next commit or a change of the alias table)."""
        self._follow()
        self.flush()
        self._compiler(aliases)  # (re)builds the alias table if the store's aliases changed
        return self._cache.get(key, self._state(), no_panic(compute))

    def _state(self) -> tuple[int, int]:
        """What cached answers and plans depend on: the commit and the alias table."""
        return (self._generation, self._alias_version)

    def _follow(self) -> None:
        """A follower's view of the writer's commits: meta.json's mtime, read on each search
        (a stat). On a change the reader reloads at once and the generation moves on, so no
        cached answer or sort bar outlives the commit."""
        if not self.read_only or self.path is None:
            return
        try:
            seen = (self.path / "meta.json").stat().st_mtime_ns
        except OSError:
            return
        if seen != self._seen_on_disk:
            self._index.reload()
            self._seen_on_disk = seen
            self._generation += 1

    def _all(
        self, query: Query, limit: int, now: datetime, texts: Texts | None
    ) -> Callable[[], list[Ranked]]:
        def compute() -> list[Ranked]:
            searcher = self._index.searcher()
            sort = query.sort
            if sort is Sort.RELEVANCE and not query.has_text():
                sort = Sort.TOP  # nothing to score by text: the most upvoted first
            if sort is not Sort.RELEVANCE:
                compiled = self._plan("full", query).query
                if compiled is None:
                    return []
                field = "published" if sort is Sort.NEW else "upvotes"
                return self._bars.by_field(
                    searcher, self.schema, compiled, field, limit, self._generation
                )
            kind = "full"
            if searcher.num_docs >= HEAD_FIRST_DOCS:
                head = self._plan("head", query, int(searcher.num_docs * DENSE_SHARE))
                if head.query is None:
                    return []  # the same parts as the full query: neither can match
                if not head.split.dense and not head.split.later:
                    kind = "sparse"  # no dense lookup: the words lead, not a date window
                else:
                    hits = head_first(searcher, self.schema, head.query, head.split, limit)
                    if hits is not None:
                        return self._best(searcher, query, hits, limit, now, texts)
            compiled = self._plan(kind, query).query
            if compiled is None:
                return []
            return self._best(
                searcher, query, bm25_hits(searcher, compiled, limit), limit, now, texts
            )

        return compute

    def _best(
        self,
        searcher: Any,
        query: Query,
        hits: list[Any],
        limit: int,
        now: datetime,
        texts: Texts | None,
    ) -> list[Ranked]:
        """The best `limit` of the BM25 `hits`, lifted by upvotes and recency (not recency
        in a `since:` window) and, for a one-word search, by its feedback."""
        fresh = query.since is None
        if texts is not None and (own := self._word_forms(query.lone_word())) is not None:
            # Only the best FEEDBACK_DEPTH can be lifted, and a lift only raises a score: the
            # rest stay below them, in the order blend_top gives.
            top = blend_top(searcher, hits, max(limit, FEEDBACK_DEPTH), now, fresh)
            return with_feedback(searcher, self.schema, top, texts, own, limit)
        return blend_top(searcher, hits, limit, now, fresh)

    def _word_forms(self, word: str | None) -> set[str] | None:
        """The analysed forms of a one-word search's word, its other number and its alias
        forms (`index_forms.own_forms`); None: not one word."""
        tokens = en_tokens(word) if word is not None else []
        if len(tokens) != 1 or self._alias_table is None:
            return None
        return own_forms(tokens[0], self._alias_table[1])

    def _most(
        self, query: Query, limit: int, now: datetime, exclude: Set[str]
    ) -> Callable[[], list[Ranked]]:
        def compute() -> list[Ranked]:
            compiled = self._plan("most", query).query
            if compiled is None:
                return []
            searcher = self._index.searcher()
            hits = ranked(searcher, compiled, limit + len(exclude), now, query.since is None)
            return [hit for hit in hits if hit.id not in exclude][:limit]

        return compute

    def _plan(self, kind: str, query: Query, dense_df: int | None = None) -> Plan:
        """`query` compiled (`index_rank.plan`), until the next commit or alias change."""

        def make() -> Plan:
            assert self._alias_table is not None  # built by `_cached`
            return plan(self._compiler(self._alias_table[0], dense_df), kind, query)

        return self._plans.get((kind, query, dense_df), self._state(), make)

    def _compiler(
        self, aliases: Aliases, dense_df: int | None = None, fields: Fields = FULL
    ) -> Compiler:
        # The store hands out the same mapping until it mines new aliases: build the table
        # (curated list + mined pairs, analysed) once per mapping, not once per search.
        cached = self._alias_table
        if cached is None or cached[0] is not aliases:
            cached = (aliases, build_alias_table(aliases, self._analyzers[EN].analyze))
            self._alias_table = cached
            self._alias_version += 1
        compiler = Compiler(
            self.schema,
            self._analyzers,
            cached[1],
            fields,
            doc_freq=self._index.searcher().doc_freq,
        )
        compiler.dense_df = dense_df
        return compiler
