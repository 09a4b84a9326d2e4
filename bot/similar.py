"""More like this: the papers of the store nearest to one paper, or to several together.

    similar(store, ["2305.18290"], now=now, since=None, until=None, sort=Sort.RELEVANCE,
            limit=10, exclude=frozenset()) -> [Ranked(id, score), ...]  (best first)

The one similarity of paperboy (`/papers like`, its "More like this" button; a channel's taste
can reuse it: pass the 👍 papers as `paper_ids` and the papers already shown as `exclude`).
The input papers themselves never come back. Ids the store does not have are skipped; with
none left, or nothing distinctive to look for, the answer is empty.

How it works (a more-like-this query built here rather than tantivy's own
`more_like_this_query`, which reads a document's stored text, and the index stores none):

1. Each input paper's terms (`bot.paper_terms`, shared with a channel's taste): analysed
   exactly as the index analyses its title, HF keywords and abstract, plus the acronym tokens
   the index writes beside a spelled-out curated expansion ("direct preference optimization"
   also counts as "dpo", so a paper that only writes DPO is near).
2. A term's weight in a paper (`bot.paper_terms`): its count in each field, dampened
   (1 + log tf) and weighted as search weighs fields (title 3, keywords 1, abstract 1), times
   its rarity in the store (idf, from the index's document frequencies). Function words, and
   terms in more than a fifth of the papers or in no other paper, never count. Each paper's
   weights are scaled to a best of 1.
3. Several papers: a term's weight is its mean over the papers times the share of the papers
   that have it, so what the papers share leads and what only one of them says weighs less.
4. The `MAX_TERMS` heaviest terms become one union of boosted term lookups in the title,
   keyword and abstract fields (BM25 scores each, with the field boosts of search). A flat
   union of term lookups is what tantivy's block-max WAND prunes: the top hits come without
   scoring every paper that shares a common word (a few ms at 1M papers, bench/like.py).

Scores are the summed BM25 of that query: comparable within one answer, not across answers.
`sort=Sort.NEW`: the `NEWEST_OF` nearest papers (those scoring at least `NEW_FLOOR` of their
mean: a paper far below the others is not near), newest first. `since`/`until` narrow to
papers that appeared in [since, until) (as search's `since:`/`until:`): looked for among the
`WINDOW_DEPTH` nearest of the whole store first, with the window required only when too few of
those are in it (`_nearest`: a long window required costs a scan of its papers).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from tantivy import FieldType, Occur, Query as TQuery

from bot.index_schema import Ranked, seconds
from bot.models import Paper
from bot.paper_terms import shared_terms, term_lookups, terms_of
from bot.query import Sort

if TYPE_CHECKING:
    from bot.store import PaperStore

__all__ = ["MAX_PAPERS", "NEWEST_OF", "like_terms", "similar"]

MAX_PAPERS = 10  # input papers at most (`/papers like` refuses more)
MAX_TERMS = 25  # terms in the query (as tantivy's more-like-this default)
NEWEST_OF = 30  # sort:new: the nearest this many, newest first ...
NEW_FLOOR = 0.3  # ... of those scoring at least this share of their mean score
WINDOW_DEPTH = 300  # since:/until: look among this many of the nearest first (`_nearest`)
EXCLUDE_INLINE = 100  # more excluded ids than this: excluded in the query, not afterwards
MAX_LIMIT = 100


def similar(
    store: PaperStore,
    paper_ids: Sequence[str],
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: Sort = Sort.RELEVANCE,
    limit: int = 10,
    exclude: Set[str] = frozenset(),
) -> list[Ranked]:
    """The papers nearest to `paper_ids` (store keys), best first (newest first with
    `sort=Sort.NEW`), at most `limit`, never one of `paper_ids` or `exclude`."""
    del now  # similarity does not age; kept so callers pass the time as everywhere else
    papers = store.get_many(list(dict.fromkeys(paper_ids))[:MAX_PAPERS])
    limit = min(limit, MAX_LIMIT)
    if not papers or limit <= 0:
        return []
    index = store.search_index()
    skip = {p.id for p in papers} | set(exclude)

    def compute(searcher: Any) -> list[Ranked]:
        terms = like_terms(papers, searcher.doc_freq, int(searcher.num_docs))
        lookups = list(term_lookups(index.schema, terms))
        if not lookups:
            return []
        depth = NEWEST_OF if sort is Sort.NEW else limit
        window = _Window(since, until)
        found = _nearest(searcher, index.schema, lookups, window, skip, depth)
        if sort is Sort.NEW and found:
            found = _newest_first(searcher, found)
        return [Ranked(key, score) for key, score, _ in found[:limit]]

    return index.read(compute)


class _Window(NamedTuple):
    since: datetime | None
    until: datetime | None

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None

    def holds(self, published: int | None) -> bool:
        """Does a paper that appeared at `published` (epoch seconds) fall in [since, until)?"""
        when = published or 0
        low = self.since is None or when >= seconds(self.since)
        return low and (self.until is None or when < seconds(self.until))


_Found = tuple[str, float, Any]  # id, score, document address


def _nearest(
    searcher: Any, schema: Any, lookups: list[Any], window: _Window, skip: Set[str], depth: int
) -> list[_Found]:
    """The `depth` best matches in `window`, leaving out `skip`.

    A window is first looked for among the best `WINDOW_DEPTH` matches of the whole store (the
    pruned union, a few ms): when enough of them fall in it, they are exactly its best (every
    paper further down scores lower). Otherwise (a short window) the window becomes a required
    clause: intersecting reads every paper of the window, which a short one keeps cheap, while
    a long one (a year: a fifth of the store) would cost hundreds of ms at 1M papers."""
    if window:
        probe = WINDOW_DEPTH + len(skip)
        hits = _hits(searcher, _query(schema, lookups, _Window(None, None), skip), probe)
        found = _found(searcher, hits, skip)
        when = searcher.fast_field_values("published", [addr for _, _, addr in found])
        inside = [f for f, at in zip(found, when, strict=True) if window.holds(at)]
        if len(inside) >= depth or len(hits) < probe:
            return inside[:depth]
    extra = 0 if len(skip) > EXCLUDE_INLINE else len(skip)
    hits = _hits(searcher, _query(schema, lookups, window, skip), depth + extra)
    return _found(searcher, hits, skip)[:depth]


def _hits(searcher: Any, query: Any, depth: int) -> list[Any]:
    hits: list[Any] = searcher.search(query, depth, count=False).hits
    return hits


def _found(searcher: Any, hits: list[Any], skip: Set[str]) -> list[_Found]:
    out = []
    for score, addr in hits:
        key = str(searcher.doc(addr).get_first("id"))
        if score > 0 and key not in skip:
            out.append((key, float(score), addr))
    return out


def _newest_first(searcher: Any, found: list[_Found]) -> list[_Found]:
    """The nearest papers newest first, leaving out those far below the others' scores."""
    floor = NEW_FLOOR * sum(score for _, score, _ in found) / len(found)
    found = [f for f in found if f[1] >= floor]
    when = searcher.fast_field_values("published", [addr for _, _, addr in found])
    order = sorted(range(len(found)), key=lambda k: (-(when[k] or 0), k))
    return [found[k] for k in order]


def like_terms(
    papers: Sequence[Paper], doc_freq: Any, total: int, max_terms: int = MAX_TERMS
) -> dict[str, float]:
    """The `max_terms` heaviest terms of `papers` together, with their weights (best 1.0)."""
    bags = [terms_of(p.title, p.abstract, p.ai_keywords) for p in papers]
    return shared_terms(bags, doc_freq, total, max_terms)


def _query(schema: Any, lookups: list[Any], window: _Window, skip: Set[str]) -> Any:
    """A union of boosted term lookups (block-max WAND prunes it), with the date window and,
    for a long exclusion list, the exclusion as required clauses."""
    required: list[tuple[Occur, Any]] = []
    if window:
        since, until = window
        dates = TQuery.range_query(
            schema,
            "published",
            FieldType.Integer,
            seconds(since) if since else None,
            seconds(until) if until else None,
            include_upper=until is None,
            use_inverted_index=True,
        )
        required.append((Occur.Must, TQuery.boost_query(dates, 0.0)))
    if len(skip) > EXCLUDE_INLINE:
        ids = TQuery.term_set_query(schema, "id", sorted(i.lower() for i in skip))
        required.append((Occur.MustNot, ids))
    should = [(Occur.Should, q) for q in lookups]
    if not required:
        return TQuery.boolean_query(should)
    return TQuery.boolean_query(should + required, minimum_number_should_match=1)
