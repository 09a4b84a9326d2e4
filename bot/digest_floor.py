"""The relevance floor: a paper enters a digest only if it matches its topic strongly enough,
so a quiet day posts fewer papers rather than filler.

"Strongly enough" is measured against the topic itself, not against the day: a match passes
when its score is at least `FLOOR_SHARE` of the best score the topic reaches among all the
store's papers (BM25 over title, keywords, abstract and authors, the same clauses), or when
its abstract alone scores at least `ABSTRACT_SHARE` of the best abstract score for the topic
(a paper whose title does not name the topic but whose abstract is about it, not a passing
mention). See `bot.index_window`. Ranking inside a digest stays relative to the day's best;
the floor does not move with the day, so the best of a quiet day's filler is not promoted to
"relevant" because nothing better arrived.

The shares come from the judged set (bench/relevance/judgments.json: 54 researcher queries
over real captured papers, graded 0-3; `python bench/relevance.py --floor` prints the table).
Of the 318 matches of the judged queries, this floor keeps 94% of those graded 2 or 3 ("clearly
about it") and cuts 66% of the ungraded ones (counted 0: "not about it"), keeping 63% of those
graded 1 ("touches it"). The whole-text share alone at 0.2 keeps 95% and cuts 58%, but drops
papers that name the topic only in a short abstract (the best papers name it in title,
keywords and abstract, so the abstract alone weighs a sixth of them); tests/test_digest_floor.py
holds the floor to these figures.

A topic with nothing to score by text (`has:code stars:>=100`: filters only) and `--hf-top`
(ranked by upvotes) have no floor: every match is a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.query import Query

FLOOR_SHARE = 0.25
ABSTRACT_SHARE = 0.6


class Floor:
    """Whether a topic's match passes: `strong(score)` on its whole text; for those that are
    not, `passes(id, score)` once `abstracts` gave the abstract scores."""

    def __init__(self, query: Query, best: float) -> None:
        self.off = not query.has_text() or best <= 0.0
        self.score = FLOOR_SHARE * best
        self.abstract: Mapping[str, float] = {}
        self.abstract_score: float | None = None

    def strong(self, score: float) -> bool:
        return self.off or score >= self.score

    def abstracts(self, scores: Mapping[str, float], best: float) -> None:
        self.abstract = scores
        self.abstract_score = ABSTRACT_SHARE * best if best > 0 else None

    def passes(self, pid: str, score: float) -> bool:
        if self.strong(score):
            return True
        own = self.abstract.get(pid)
        return own is not None and self.abstract_score is not None and own >= self.abstract_score


def passes(
    query: Query,
    score: float,
    best: float,
    abstract: float | None = None,
    best_abstract: float = 0.0,
) -> bool:
    """One match: `score` against the topic's `best`, its abstract's score against the best
    abstract's (for measurements: `bench/relevance/floor.py`)."""
    floor = Floor(query, best)
    floor.abstracts({"": abstract} if abstract is not None else {}, best_abstract)
    return floor.passes("", score)
