"""A digest topic's window read from the index: every match announced in the window with its
BM25 score and the fast fields digests rank and filter by, and what the relevance floor of
`bot.digest_floor` measures a match against: the topic's best score over the whole store, and
the same for its abstract alone.

Nothing here ranks: ranking stays in `bot.index_rank`; this reads ids and fast fields only, so
a window of thousands of matches never loads a paper row.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple
from weakref import WeakKeyDictionary

from bot.index_compile import FULL
from bot.index_rank import doc_id
from bot.query import Query

if TYPE_CHECKING:
    from bot.index import Aliases, Fields, PaperIndex

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # papers without an announcement are indexed at 0
ABSTRACT: Fields = (("abstract", 1.0),)
# A topic's best score over the store is looked up again after this long; in between it only
# grows with what windows bring (`raise_best`). A search of the whole store per topic and tick
# would double a digest tick at a million papers, for a figure that moves over weeks.
BEST_FOR = timedelta(hours=6)


class WindowMatch(NamedTuple):
    id: str
    score: float  # BM25 (the same clauses as the window's search)
    upvotes: int
    published: int  # seconds since the epoch: when it appeared (`paper_time`)
    announced: int  # seconds since the epoch (`Paper.announced_at`)


class Window(NamedTuple):
    matches: list[WindowMatch]  # best first, at most `limit`
    total: int  # matches in the window in all


def window_matches(
    index: PaperIndex,
    query: Query,
    aliases: Aliases,
    since: datetime,
    until: datetime,
    limit: int,
) -> Window:
    """The `limit` best matches of `query` announced in [since, until], and how many match."""
    found = index.announced_query(query, aliases, since, until)
    if found is None or limit <= 0:
        return Window([], 0)
    both, searcher = found
    result = searcher.search(both, limit, count=True)
    addrs = [addr for _, addr in result.hits]
    upvotes = searcher.fast_field_values("upvotes", addrs)
    published = searcher.fast_field_values("published", addrs)
    announced = searcher.fast_field_values("announced", addrs)
    matches = [
        WindowMatch(doc_id(searcher, addr), float(score), int(up or 0), int(pub or 0), int(an or 0))
        for (score, addr), up, pub, an in zip(
            result.hits, upvotes, published, announced, strict=True
        )
    ]
    return Window(matches, int(getattr(result, "count", None) or 0))  # stubs omit `count`


def abstract_scores(
    index: PaperIndex,
    query: Query,
    aliases: Aliases,
    since: datetime,
    until: datetime,
    limit: int,
) -> dict[str, float]:
    """id -> the score of `query` looked for in abstracts only, for the papers announced in
    [since, until] that match it there (at most `limit`)."""
    found = index.announced_query(query, aliases, since, until, ABSTRACT)
    if found is None:
        return {}
    both, searcher = found
    hits = searcher.search(both, limit, count=False).hits
    return {doc_id(searcher, addr): float(score) for score, addr in hits}


_Key = tuple[Query, "Fields"]
_BEST: WeakKeyDictionary[PaperIndex, dict[_Key, tuple[float, datetime]]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def best_ever(
    index: PaperIndex, query: Query, aliases: Aliases, until: datetime, fields: Fields = FULL
) -> float:
    """The best score `query` reaches among all the papers announced up to `until` (the same
    clauses as a window's search, the window widened, so scores compare; 0.0: none), looked
    up at most every `BEST_FOR` per index."""
    key = (query, fields)
    with _LOCK:
        known = _BEST.setdefault(index, {}).get(key)
    if known is not None and until - BEST_FOR <= known[1] <= until:
        return known[0]
    found = index.announced_query(query, aliases, EPOCH, until, fields)
    best = 0.0
    if found is not None:
        both, searcher = found
        hits = searcher.search(both, 1, count=False).hits
        best = float(hits[0][0]) if hits else 0.0
    with _LOCK:
        _BEST.setdefault(index, {})[key] = (best, until)
    return best


def raise_best(index: PaperIndex, query: Query, score: float, fields: Fields = FULL) -> None:
    """A window found `score` for `query`: the remembered best is at least that."""
    with _LOCK:
        cached = _BEST.setdefault(index, {})
        known = cached.get((query, fields))
        if known is not None and score > known[0]:
            cached[(query, fields)] = (score, known[1])
