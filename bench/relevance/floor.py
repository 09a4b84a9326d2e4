"""What the digest relevance floor (`bot.digest_floor`) keeps and cuts on the judged set.

Every match of every judged query over the whole corpus (all of its papers are one digest
window) is scored as a digest scores it (`bot.search.window_matches`: BM25, and the topic's
best score over the store); a match passes a share `s` when its score is at least `s` times
that best. Grades as in judgments.json; unjudged matches count 0.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.relevance.evaluate import NOW
from bot.db import make_engine
from bot.index import open_index
from bot.index_window import EPOCH
from bot.models import PaperIn
from bot.query import parse_query
from bot.search import window_matches
from bot.store import PaperStore


@dataclass(frozen=True, slots=True)
class Match:
    query: str
    id: str
    grade: int
    share: float  # score / the topic's best over the store (1.0 for the best)


@dataclass
class Tally:
    """At one share: matches kept and in all, per grade group."""

    share: float
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
                window = window_matches(store, query, EPOCH, NOW, 1_000)
                for m in window.matches:
                    grade = int(judged["grades"].get(m.id, 0))
                    out.append(Match(judged["q"], m.id, grade, m.score / window.best_ever))
        finally:
            index.close()
            store.close()
            engine.dispose()
    return out


def tally(matches: Sequence[Match], share: float) -> Tally:
    result = Tally(share)
    for name, grades in GROUPS.items():
        group = [m for m in matches if m.grade in grades]
        result.total[name] = len(group)
        result.kept[name] = sum(1 for m in group if m.share >= share)
    return result
