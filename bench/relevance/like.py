"""More-like-this quality on the judged set: each judged topic gives one like-case.

For every judged topic (a query without filters) with at least `MIN_GRADED` graded papers, the
case's input is its first paper of the highest grade (the paper most clearly about the topic)
and its judged neighbours are the other graded papers of that query, with their grades. A
paper like the input should be one about the same topic: nDCG@5 of `/papers like <input>`
against those grades. This is a proxy (the grades were made for the query, not for the input
paper), so it rewards staying on topic, which is what a reader of "More like this" notices
first.

Same-run baseline: searching for the input's title words (any of them, the normal search path,
as a user would paste the title), the input itself left out.

    .venv/bin/python -m bench.relevance.like        # the table and the means
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.relevance.corpus import load_corpus, load_judgments
from bench.relevance.evaluate import NOW, ndcg
from bot.db import make_engine
from bot.index import open_index
from bot.models import PaperIn
from bot.query import parse_query
from bot.search import search_papers
from bot.similar import similar
from bot.store import PaperStore

MIN_GRADED = 4  # a topic with fewer graded papers makes no like-case
K = 5


@dataclass(frozen=True)
class LikeCase:
    topic: str
    paper: str  # the input
    grades: dict[str, int]  # the other graded papers of the topic


@dataclass(frozen=True)
class LikeScore:
    case: LikeCase
    like: float  # nDCG@5 of `similar`
    title: float  # nDCG@5 of a search for the input's title words


def like_cases(judgments: Sequence[dict[str, Any]], known: set[str]) -> list[LikeCase]:
    cases: list[LikeCase] = []
    for judged in judgments:
        if ":" in judged["q"]:
            continue  # a filter (author:, since:, cat:) is not a topic a paper is like
        grades = {pid: g for pid, g in judged["grades"].items() if pid in known and g > 0}
        if len(grades) < MIN_GRADED:
            continue
        best = max(grades.values())
        paper = next(pid for pid, g in grades.items() if g == best)
        others = {pid: g for pid, g in grades.items() if pid != paper}
        if any(c.paper == paper and c.grades == others for c in cases):
            continue  # an acronym and its spelled-out query judged alike: one case
        cases.append(LikeCase(judged["q"], paper, others))
    return cases


def evaluate_like(
    papers: Sequence[PaperIn], judgments: Sequence[dict[str, Any]]
) -> list[LikeScore]:
    cases = like_cases(judgments, {p.id for p in papers})
    with tempfile.TemporaryDirectory(prefix="paperboy-like-") as tmp:
        index = open_index(Path(tmp) / "index")
        store = PaperStore(make_engine(f"sqlite:///{Path(tmp) / 'p.db'}"), index=index)
        store.upsert_many(papers, NOW)
        scores = []
        for case in cases:
            liked = [r.id for r in similar(store, [case.paper], now=NOW, limit=K)]
            scores.append(
                LikeScore(
                    case, ndcg(liked, case.grades, K), ndcg(_by_title(store, case), case.grades, K)
                )
            )
        store.close()
    return scores


def _by_title(store: PaperStore, case: LikeCase) -> list[str]:
    paper = store.get(case.paper)
    assert paper is not None
    words = [
        w for w in "".join(c if c.isalnum() else " " for c in paper.title).split() if len(w) > 2
    ]
    query = parse_query(" OR ".join(words[:12]), NOW)
    hits = search_papers(store, query, K + 1, NOW)
    return [h.paper.id for h in hits if h.paper.id != case.paper][:K]


def main() -> None:
    scores = evaluate_like(load_corpus(), load_judgments())
    print(f"{len(scores)} like-cases (one per judged topic with {MIN_GRADED}+ graded papers)")
    print(f"{'topic':30} {'input':12} {'like':>6} {'title':>6}")
    for s in scores:
        print(f"{s.case.topic[:30]:30} {s.case.paper:12} {s.like:6.3f} {s.title:6.3f}")
    like = sum(s.like for s in scores) / len(scores)
    title = sum(s.title for s in scores) / len(scores)
    print(f"mean nDCG@5: like {like:.3f}; BASELINE search for its title words {title:.3f}")


if __name__ == "__main__":
    main()
