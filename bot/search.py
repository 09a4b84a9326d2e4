"""The one search path: a parsed `Query` -> ranked papers from the store's index.

Chat searches (`search_papers`) and digests (`announced_matches`) both come through here; the
index they read is the store's (`PaperStore.search_index`). The query language itself lives
in `bot.query` (re-exported here for the command layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.index_schema import Ranked
from bot.index_window import window_matches
from bot.models import Paper
from bot.query import MAX_RESULTS, MAX_TERMS, Query, Sort, describe, parse_query

if TYPE_CHECKING:
    from bot.store import PaperStore

__all__ = [
    "MAX_RESULTS",
    "MAX_TERMS",
    "RELAX_BELOW",
    "Hit",
    "Query",
    "Sort",
    "TopicMatches",
    "announced_matches",
    "busiest_day",
    "describe",
    "parse_query",
    "search_papers",
]

RELAX_BELOW = 10  # fewer full matches than this: fill up with papers matching most words


@dataclass(frozen=True, slots=True)
class Hit:
    paper: Paper
    score: float
    partial: bool = False  # matches most of the words, not all (ranked below every full match)


def search_papers(store: PaperStore, query: Query, limit: int, now: datetime) -> list[Hit]:
    """The whole search: index -> ids and scores -> rows from the store, in ranked order.

    When fewer than `RELAX_BELOW` papers match every word, papers matching most of the words
    fill the rest (`Hit.partial`), ranked below every full match. An empty query finds
    nothing.
    """
    if query.is_empty() or limit <= 0:
        return []
    # tantivy allocates for `limit` hits up front: 10**9 would abort the process.
    limit = min(limit, MAX_RESULTS)
    index = store.search_index()
    aliases = store.aliases()
    ranked = index.search(query, aliases, limit, now, texts=store.texts)
    partial: list[Ranked] = []
    if len(ranked) < min(limit, RELAX_BELOW):
        strict = {r.id for r in ranked}
        partial = index.search_relaxed(query, aliases, limit - len(ranked), now, strict)
    papers = {p.id: p for p in store.get_many([r.id for r in ranked + partial])}
    hits = [Hit(papers[r.id], r.score) for r in ranked if r.id in papers]
    hits += [Hit(papers[r.id], r.score, partial=True) for r in partial if r.id in papers]
    return hits


@dataclass(frozen=True, slots=True)
class TopicMatches:
    """A digest topic's best matches in a window (BM25, best first) and how many match."""

    hits: list[Ranked]
    total: int


def announced_matches(
    store: PaperStore, query: Query, since: datetime, until: datetime, limit: int
) -> TopicMatches:
    """The `limit` best papers matching `query` announced in [since, until] (a digest topic)."""
    found = window_matches(store.search_index(), query, store.aliases(), since, until, limit)
    return TopicMatches([Ranked(m.id, m.score) for m in found.matches], found.total)


def busiest_day(store: PaperStore, query: Query, since: datetime, until: datetime) -> int:
    """The most papers matching `query` announced on one UTC day of [since, until]."""
    days = store.search_index().announced_per_day(query, store.aliases(), since, until)
    return max(days, default=0)
