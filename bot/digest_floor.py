"""The relevance floor: a paper enters a digest only if it matches its topic strongly enough,
so a quiet day posts fewer papers rather than filler.

"Strongly enough" is measured against the topic itself, not against the day: a match must
score at least `RELEVANCE_FLOOR` of the best score the topic reaches among all the store's
papers (BM25, the same clauses; `bot.index_window`). Ranking inside a digest stays relative to
the day's best; the floor does not move with the day, so the best of a quiet day's filler is
not promoted to "relevant" because nothing better arrived.

The share comes from the judged set (bench/relevance/judgments.json: 54 researcher queries
over real captured papers, graded 0-3; `python bench/relevance.py --floor` prints this table
for several shares). At 0.2, of the 318 matches of the judged queries: 95% of the papers
graded 2 or 3 ("clearly about it") are kept, 52% of the ungraded ones (counted 0: "not about
it") are cut, 82% of those graded 1 ("touches it") are kept. Higher shares cut more filler but
drop papers judges called relevant (0.3: 91% kept, 78% cut); lower ones let filler through
(0.1: 100% kept, 9% cut). tests/test_digest_floor.py holds the floor to these figures.

A topic with nothing to score by text (`has:code stars:>=100`: filters only) and `--hf-top`
(ranked by upvotes) have no floor: every match is a candidate.
"""

from __future__ import annotations

from bot.query import Query

RELEVANCE_FLOOR = 0.2


def floor_score(query: Query, best_ever: float) -> float:
    """The lowest score a match of `query` needs to enter a digest (0.0: no floor)."""
    if not query.has_text() or best_ever <= 0.0:
        return 0.0
    return RELEVANCE_FLOOR * best_ever
