"""One-word searches: the best matches say which sense of the word the store means.

A single word is the most ambiguous search there is. In an ML store "alignment" is mostly LLM
alignment, but representation alignment, text-to-video alignment and aligned nanotubes say
the word as often, and BM25 ranks on the word alone: a paper that repeats it in a short title
wins whatever it is about. Longer searches carry their own context ("safety alignment").

So for a search whose text is one word (its acronym forms included), the ranking takes the
classic pseudo-relevance feedback step:

1. The search's best `FEEDBACK_PAPERS` matches (after the upvote and recency lift, within its
   filters: `alignment cat:q-bio` is about sequences) are read from the store: the title and
   the opening `OPENING_CHARS` of the abstract (where a paper says what it is about; the rest
   costs time and adds little). Not the HF keywords: arXiv-only papers have none, and the
   sense should not depend on where a paper came from.
2. Their shared distinctive terms (`bot.paper_terms`: weighted as "more like this" weighs
   them, what most of them share leads; a term only one of them has is left out), leaving out
   the searched word and its alias forms, which every candidate already scores on.
3. The best `FEEDBACK_DEPTH` candidates are scored on those terms (one union of term lookups
   among those papers only), and each score is lifted by up to `FEEDBACK_WEIGHT` in
   proportion to that score over the best candidate's. A lift only raises a score, so the
   candidates below them stay below.

The lift reorders the best `FEEDBACK_DEPTH` matches; no paper from further down enters.
Measured on the judged set (`bench/relevance.py`): "alignment" ranks the LLM alignment papers
above representation alignment (0.78 to 0.87 nDCG@5, the one query to move but
"hallucination", 0.96 to 0.92). The constants sit inside a plateau: with 8 papers, every weight
from 0.2 to 0.8 with every opening from 200 characters to the whole abstract keeps every judged
query at 0.8 or more (with or without the keywords); with 6, 10 or 12 papers fewer settings
do (52 of 64 in all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence, Set
from typing import Any

from tantivy import Occur, Query as TQuery

from bot.index_rank import doc_id, only
from bot.index_schema import Ranked
from bot.models import PaperText
from bot.paper_terms import shared_terms, term_lookups, terms_of

__all__ = [
    "FEEDBACK_DEPTH",
    "FEEDBACK_PAPERS",
    "FEEDBACK_WEIGHT",
    "OPENING_CHARS",
    "Texts",
    "with_feedback",
]

FEEDBACK_PAPERS = 8  # the best matches whose shared terms show the word's sense
FEEDBACK_TERMS = 25  # of their terms, the heaviest this many
FEEDBACK_DEPTH = 20  # the best this many candidates are scored on those terms
FIT_FIELDS = ("title", "abstract")  # ... in these fields
FEEDBACK_WEIGHT = 0.3  # the best-fitting candidate's score is lifted by this share
OPENING_CHARS = 200  # of each abstract, the opening (cut at a word)


Texts = Callable[[Sequence[str]], Sequence[PaperText]]  # ids -> those papers, in that order


def with_feedback(
    searcher: Any, schema: Any, top: list[Ranked], texts: Texts, own: Set[str], limit: int
) -> list[Ranked]:
    """`top` (a one-word search's re-ranked candidates, best first) lifted by how well each
    fits the best ones' shared terms (`own`: the searched word's analysed forms, left out):
    the best `limit`."""
    terms = _shared(searcher, top, texts, own)
    fit = _fit(searcher, schema, [r.id for r in top[:FEEDBACK_DEPTH]], terms) if terms else {}
    best = max(fit.values(), default=0.0)
    if best <= 0:
        return top[:limit]
    scored = [
        (r.score * (1.0 + FEEDBACK_WEIGHT * fit.get(r.id, 0.0) / best), i, r.id)
        for i, r in enumerate(top)
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [Ranked(key, score) for score, _, key in scored[:limit]]


def _shared(searcher: Any, top: list[Ranked], texts: Texts, own: Set[str]) -> dict[str, float]:
    """The terms the best `FEEDBACK_PAPERS` of `top` share (in two of them at least), with
    their weights, leaving out `own`."""
    bags = []
    for paper in texts([r.id for r in top[:FEEDBACK_PAPERS]]):
        bag = terms_of(paper.title, _opening(paper.abstract), ())
        bags.append({t: w for t, w in bag.items() if t not in own})
    seen = Counter(t for bag in bags for t in bag)
    bags = [{t: w for t, w in bag.items() if seen[t] >= 2} for bag in bags]
    if len(bags) < 2:
        return {}
    return shared_terms(bags, searcher.doc_freq, int(searcher.num_docs), FEEDBACK_TERMS)


def _opening(abstract: str | None) -> str:
    if not abstract or len(abstract) <= OPENING_CHARS:
        return abstract or ""
    cut = abstract.rfind(" ", 0, OPENING_CHARS)
    return abstract[: cut if cut > 0 else OPENING_CHARS]


def _fit(searcher: Any, schema: Any, ids: list[str], terms: dict[str, float]) -> dict[str, float]:
    """id -> BM25 of the union of `terms` lookups, for the papers `ids` only (their ids lead
    the intersection: a lookup is read for these papers, not the store)."""
    among = only(schema, ids)
    lookups = term_lookups(schema, terms, FIT_FIELDS)
    union = TQuery.boolean_query([(Occur.Should, q) for q in lookups])
    query = TQuery.boolean_query([(Occur.Must, among), (Occur.Must, union)])
    hits = searcher.search(query, len(ids), count=False).hits
    return {doc_id(searcher, addr): float(score) for score, addr in hits}
