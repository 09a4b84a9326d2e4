"""A digest topic's window read from the index: every match announced in the window with its
BM25 score and the fast fields digests rank and filter by, and what the relevance floor of
`bot.digest_floor` measures a match against: the topic's best score over the whole store, and
the same for its abstract alone.

Nothing here ranks: ranking stays in `bot.index_rank`; this reads ids and fast fields only, so
a window of thousands of matches never loads a paper row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from bot.index_compile import FULL
from bot.index_rank import doc_id
from bot.query import Query

if TYPE_CHECKING:
    from bot.index import Aliases, Fields, PaperIndex

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # papers without an announcement are indexed at 0
ABSTRACT: Fields = (("abstract", 1.0),)


class WindowMatch(NamedTuple):
    id: str
    score: float  # BM25 (the same clauses as the window's search)
    upvotes: int
    published: int  # seconds since the epoch: when it appeared (`paper_time`)
    announced: int  # seconds since the epoch (`Paper.announced_at`)


class Window(NamedTuple):
    matches: list[WindowMatch]  # best first, at most `limit`
    total: int  # matches in the window in all
    best_ever: float  # the best score of any match in the whole store (0.0: none)
    abstract: dict[str, float]  # id -> score of the topic in the abstract alone (if any)
    best_abstract: float  # the best such score in the whole store (0.0: none)


def window_matches(
    index: PaperIndex,
    query: Query,
    aliases: Aliases,
    since: datetime,
    until: datetime,
    limit: int,
) -> Window:
    """The `limit` best matches of `query` announced in [since, until] and how many match
    there; the best score the query reaches among all the store's papers announced up to
    `until` (the same clauses, the window widened: scores are comparable); and the same two
    for the query looked for in abstracts only."""
    found = index.announced_query(query, aliases, since, until)
    if found is None or limit <= 0:
        return Window([], 0, 0.0, {}, 0.0)
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
    total = int(getattr(result, "count", None) or 0)  # the stubs omit `count`
    in_abstract = index.announced_query(query, aliases, since, until, ABSTRACT)
    return Window(
        matches,
        total,
        _best_ever(index, query, aliases, until, FULL),
        _scores(in_abstract, limit) if matches else {},
        _best_ever(index, query, aliases, until, ABSTRACT) if matches else 0.0,
    )


def _scores(found: tuple[Any, Any] | None, limit: int) -> dict[str, float]:
    if found is None:
        return {}
    query, searcher = found
    hits = searcher.search(query, limit, count=False).hits
    return {doc_id(searcher, addr): float(score) for score, addr in hits}


def _best_ever(
    index: PaperIndex, query: Query, aliases: Aliases, until: datetime, fields: Fields
) -> float:
    found = index.announced_query(query, aliases, EPOCH, until, fields)
    if found is None:
        return 0.0
    both, searcher = found
    hits = searcher.search(both, 1, count=False).hits
    return float(hits[0][0]) if hits else 0.0
