"""One-word searches: the best matches say which sense of the word the store means.

A single word is the most ambiguous search there is. In an ML store "alignment" is mostly LLM
alignment, but representation alignment, text-to-video alignment and aligned nanotubes say
the word as often, and BM25 ranks on the word alone: a paper that repeats it in a short title
wins whatever it is about. Longer searches carry their own context ("safety alignment").

So for a search whose text is one word (its acronym forms included), the ranking takes the
classic pseudo-relevance feedback step:

1. The search's best `FEEDBACK_PAPERS` matches (after the upvote and recency lift, within its
   filters: `alignment cat:q-bio` is about sequences) are read from the store: title,
   keywords and the opening `OPENING_CHARS` of the abstract (where a paper says what it is
   about; the rest costs time and adds little).
2. Their shared distinctive terms (`bot.paper_terms`: weighted as "more like this" weighs
   them, what most of them share leads), leaving out the searched word and its alias forms,
   which every candidate already scores on.
3. Each candidate of the re-rank depth is scored on those terms (one union of term lookups
   among those candidates only), and its score is lifted by up to `FEEDBACK_WEIGHT` in
   proportion to that score over the best candidate's.

The lift reorders papers that all match the word; it never adds a paper or drops one.
Measured on the judged set (`bench/relevance.py`): "alignment" ranks the LLM alignment papers
above representation alignment (0.78 to 0.87 nDCG@5, the one query to move but
"hallucination", 0.96 to 0.92). The constants sit inside a plateau: with 8 papers, any weight
from 0.2 to 0.8 and openings from 200 characters to the whole abstract give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from typing import Any, Protocol

from tantivy import Occur, Query as TQuery

from bot.index_schema import Ranked
from bot.paper_terms import shared_terms, term_lookups, terms_of

__all__ = ["FEEDBACK_PAPERS", "FEEDBACK_WEIGHT", "OPENING_CHARS", "Texts", "with_feedback"]

FEEDBACK_PAPERS = 8  # the best matches whose shared terms show the word's sense
FEEDBACK_TERMS = 25  # of their terms, the heaviest this many
FEEDBACK_WEIGHT = 0.3  # the best-fitting candidate's score is lifted by this share
OPENING_CHARS = 300  # of each abstract, the opening (cut at a word)


class PaperText(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def abstract(self) -> str | None: ...
    @property
    def ai_keywords(self) -> Any: ...


Texts = Callable[[Sequence[str]], Sequence[PaperText]]  # ids -> those papers, in that order


def with_feedback(
    searcher: Any, schema: Any, top: list[Ranked], texts: Texts, own: Set[str], limit: int
) -> list[Ranked]:
    """`top` (a one-word search's re-ranked candidates, best first) lifted by how well each
    fits the best ones' shared terms (`own`: the searched word's analysed forms, left out):
    the best `limit`."""
    bags = []
    for paper in texts([r.id for r in top[:FEEDBACK_PAPERS]]):
        bag = terms_of(paper.title, _opening(paper.abstract), paper.ai_keywords)
        bags.append({t: w for t, w in bag.items() if t not in own})
    if len(bags) < 2:
        return top[:limit]
    terms = shared_terms(bags, searcher.doc_freq, int(searcher.num_docs), FEEDBACK_TERMS)
    fit = _fit(searcher, schema, [r.id for r in top], terms) if terms else {}
    best = max(fit.values(), default=0.0)
    if best <= 0:
        return top[:limit]
    scored = [
        (r.score * (1.0 + FEEDBACK_WEIGHT * fit.get(r.id, 0.0) / best), i, r.id)
        for i, r in enumerate(top)
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [Ranked(key, score) for score, _, key in scored[:limit]]


def _opening(abstract: str | None) -> str:
    if not abstract or len(abstract) <= OPENING_CHARS:
        return abstract or ""
    cut = abstract.rfind(" ", 0, OPENING_CHARS)
    return abstract[: cut if cut > 0 else OPENING_CHARS]


def _fit(searcher: Any, schema: Any, ids: list[str], terms: dict[str, float]) -> dict[str, float]:
    """id -> BM25 of the union of `terms` lookups, for the papers `ids` only (an id set with
    weight 0 leads the intersection: a lookup is read for these papers, not the store)."""
    among = TQuery.boost_query(TQuery.term_set_query(schema, "id", [i.lower() for i in ids]), 0.0)
    union = TQuery.boolean_query([(Occur.Should, q) for q in term_lookups(schema, terms)])
    query = TQuery.boolean_query([(Occur.Must, among), (Occur.Must, union)])
    hits = searcher.search(query, len(ids), count=False).hits
    return {str(searcher.doc(addr).get_first("id")): float(score) for score, addr in hits}
