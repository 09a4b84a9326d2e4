"""What the digest relevance floor (`bot.digest_floor`) keeps and cuts on the judged set.

Every match of every judged query over the whole corpus (all of its papers are one digest
window) is scored as a digest scores it (`bot.index_window`: BM25, the topic's best
score over the store, the same for abstracts alone); a match passes shares (s, a) when its
score is at least s times that best, or its abstract's at least a times the best abstract's
(`bot.digest_floor.passes`). Grades as in judgments.json; unjudged matches count 0.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.relevance.evaluate import NOW
from bot.db import make_engine
from bot.digest_floor import passes
from bot.index import open_index
from bot.index_window import ABSTRACT, EPOCH, abstract_scores, best_ever, window_matches
from bot.models import PaperIn
from bot.query import parse_query
from bot.store import PaperStore


@dataclass(frozen=True, slots=True)
class Match:
    query: str
    id: str
    grade: int
    query_text: str
    score: float
    best: float  # the topic's best score over the store
    abstract: float | None  # the score of the topic in its abstract alone
    best_abstract: float  # the best such score over the store


@dataclass
class Tally:
    """At one pair of shares (whole text, abstract): matches kept and in all, per grade group."""

    share: float
    abstract_share: float | None
    kept: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def kept_share(self, group: str) -> float:
        return self.kept.get(group, 0) / max(self.total.get(group, 0), 1)


GROUPS = {"relevant (2-3)": (2, 3), "touches (1)": (1,), "not about it (0)": (0,)}


def judged_matches(papers: Sequence[PaperIn], judgments: Sequence[dict[str, Any]]) -> list[Match]:
    """Every match of every judged query, with its grade and its share of the topic's best."""
    out: list[Match] = []
    with tempfile.TemporaryDirectory(prefix="paperboy-floor-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'paperboy.db'}")
        index = open_index(Path(tmp) / "index")
        store = PaperStore(engine, index=index)
        try:
            store.upsert_many(papers, NOW)
            store.sync_index()
            for judged in judgments:
                query = parse_query(judged["q"], NOW)
                index, aliases = store.search_index(), store.aliases()
                window = window_matches(index, query, aliases, EPOCH, NOW, 1_000)
                best = best_ever(index, query, aliases, NOW)
                abstract = abstract_scores(index, query, aliases, EPOCH, NOW, 1_000)
                best_abstract = best_ever(index, query, aliases, NOW, ABSTRACT)
                for m in window.matches:
                    grade = int(judged["grades"].get(m.id, 0))
                    out.append(
                        Match(
                            judged["q"],
                            m.id,
                            grade,
                            judged["q"],
                            m.score,
                            best,
                            abstract.get(m.id),
                            best_abstract,
                        )
                    )
        finally:
            index.close()
            store.close()
            engine.dispose()
    return out


def tally(matches: Sequence[Match], share: float, abstract_share: float | None = None) -> Tally:
    """What a floor of `share` of the topic's best (or `abstract_share` of its best abstract,
    None: no such second chance) keeps."""
    result = Tally(share, abstract_share)
    for name, grades in GROUPS.items():
        group = [m for m in matches if m.grade in grades]
        result.total[name] = len(group)
        result.kept[name] = sum(1 for m in group if _kept(m, share, abstract_share))
    return result


def _kept(m: Match, share: float, abstract_share: float | None) -> bool:
    if m.best <= 0 or m.score >= share * m.best:
        return True
    if abstract_share is None or m.abstract is None or m.best_abstract <= 0:
        return False
    return m.abstract >= abstract_share * m.best_abstract


def chosen(matches: Sequence[Match], now: Any) -> Tally:
    """What the digest's own floor (`bot.digest_floor`) keeps: the same arithmetic, checked
    through `passes` so the two cannot drift apart."""
    from bot.digest_floor import ABSTRACT_SHARE, FLOOR_SHARE

    result = tally(matches, FLOOR_SHARE, ABSTRACT_SHARE)
    for name, grades in GROUPS.items():
        group = [m for m in matches if m.grade in grades]
        result.kept[name] = sum(
            1
            for m in group
            if passes(parse_query(m.query_text, now), m.score, m.best, m.abstract, m.best_abstract)
        )
    return result
