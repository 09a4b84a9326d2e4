"""Three rankers over the relevance corpus, and the measures: nDCG@5 and recall@10.

- paperboy: the real search path (`PaperStore` + tantivy index + `search_papers`), fed through
  `upsert_many` like any import, so mined aliases are in play exactly as in production.
- FTS5: SQLite FTS5 (porter stemming) ranked by bm25 with the same field weights as
  paperboy's index; every word must match (FTS5's own implicit AND), filters in SQL.
- rank_bm25: BM25Okapi over title, keywords, abstract and authors, every paper scored,
  filters applied to the ranked list.

The two baselines see the same parsed query (words, phrases, author, category, dates,
upvotes) so they differ from paperboy only in ranking and matching.
"""

from __future__ import annotations

import math
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.db import make_engine
from bot.index import open_index
from bot.index_schema import BOOSTS, paper_time
from bot.models import PaperIn
from bot.query import AnyOf, Author, Category, Not, Phrase, Query, Word, parse_query
from bot.search import search_papers
from bot.store import PaperStore

# The corpus' newest papers are from mid-2026; "now" is fixed so recency and `since:7d` are
# deterministic.
NOW = datetime(2026, 8, 15, 12, 0, tzinfo=UTC)
K_NDCG = 5
K_RECALL = 10
# title, keywords, abstract, authors: the index's own boosts
FIELD_WEIGHTS = tuple(BOOSTS[f] for f in ("title", "keywords", "abstract", "authors"))

Ranker = Callable[[str], list[str]]


@dataclass
class Scored:
    query: str
    kind: str
    ndcg: dict[str, float]
    recall: dict[str, float]
    top: dict[str, list[str]]


def ndcg(ranked: Sequence[str], grades: dict[str, int], k: int = K_NDCG) -> float:
    def dcg(gains: Sequence[int]) -> float:
        return float(sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:k])))

    ideal = dcg(sorted(grades.values(), reverse=True))
    if ideal == 0:
        return 1.0 if not ranked else 0.0
    return dcg([grades.get(pid, 0) for pid in ranked]) / ideal


def recall(ranked: Sequence[str], grades: dict[str, int], k: int = K_RECALL) -> float:
    relevant = {pid for pid, g in grades.items() if g >= 1}
    if not relevant:
        return 1.0
    return len(relevant & set(ranked[:k])) / len(relevant)


# ------------------------------------------------------------------------ paperboy


@contextmanager
def paperboy_ranker(papers: Sequence[PaperIn]) -> Iterator[Ranker]:
    with tempfile.TemporaryDirectory(prefix="paperboy-relevance-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'paperboy.db'}")
        index = open_index(Path(tmp) / "index")
        store = PaperStore(engine, index=index)
        store.upsert_many(papers, NOW)
        store.sync_index()

        def rank(text: str) -> list[str]:
            query = parse_query(text, NOW)
            return [hit.paper.id for hit in search_papers(store, query, K_RECALL, NOW)]

        try:
            yield rank
        finally:
            index.close()
            store.close()
            engine.dispose()


# ------------------------------------------------------------------------ baselines

_TOKEN = re.compile(r"\w+")


def _terms(query: Query) -> tuple[list[str], list[list[str]], list[str], list[str], list[str]]:
    """(words, phrases, authors, categories, excluded words) of a parsed query."""
    words: list[str] = []
    phrases: list[list[str]] = []
    authors: list[str] = []
    cats: list[str] = []
    excluded: list[str] = []
    for clause in query.clauses:
        node = clause.options[0] if isinstance(clause, AnyOf) else clause
        if isinstance(node, Word):
            toks = _TOKEN.findall(node.text)
            (words.extend(toks) if len(toks) == 1 else phrases.append(toks))
        elif isinstance(node, Phrase):
            phrases.append(_TOKEN.findall(node.text))
        elif isinstance(node, Author):
            authors.append(node.name)
        elif isinstance(node, Category):
            cats.append(node.code)
        elif isinstance(node, Not) and isinstance(node.node, Word):
            excluded += _TOKEN.findall(node.node.text)
    return words, phrases, authors, cats, excluded


def _passes(query: Query, paper: PaperIn, cats: list[str]) -> bool:
    when = paper_time(_as_paper(paper))
    if query.since is not None and when < query.since:
        return False
    if query.until is not None and when >= query.until:
        return False
    if query.upvotes is not None and not query.upvotes.matches(paper.upvotes or 0):
        return False
    codes = {c.lower() for c in paper.categories} | {
        c.lower().split(".")[0] for c in paper.categories
    }
    return all(c in codes for c in cats)


def _as_paper(paper: PaperIn) -> Any:
    from bot.models import Paper

    return Paper(
        id=paper.id,
        title=paper.title,
        published_at=paper.published_at,
        hf_daily_date=paper.hf_daily_date,
        first_seen_at=NOW,
        updated_at=NOW,
    )


@contextmanager
def fts5_ranker(papers: Sequence[PaperIn]) -> Iterator[Ranker]:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(title, keywords, abstract, authors, "
        "tokenize='porter unicode61')"
    )
    db.executemany(
        "INSERT INTO fts(rowid, title, keywords, abstract, authors) VALUES (?,?,?,?,?)",
        [
            (i, p.title, " ".join(p.ai_keywords), p.abstract, " ".join(p.authors))
            for i, p in enumerate(papers)
        ],
    )
    w = ", ".join(str(x) for x in FIELD_WEIGHTS)

    def rank(text: str) -> list[str]:
        query = parse_query(text, NOW)
        words, phrases, authors, cats, excluded = _terms(query)
        parts = [f'"{t}"' for t in words]
        parts += ['"' + " ".join(p) + '"' for p in phrases]
        parts += [
            "authors: (" + " ".join(f'"{t}"' for t in _TOKEN.findall(a)) + ")" for a in authors
        ]
        if not parts:
            ids = [i for i, p in enumerate(papers) if _passes(query, p, cats)]
            ids.sort(key=lambda i: -(papers[i].upvotes or 0))
            return [papers[i].id for i in ids[:K_RECALL]]
        match = " AND ".join(parts)
        if excluded:
            match += " NOT " + " NOT ".join(f'"{t}"' for t in excluded)
        rows = db.execute(
            f"SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts, {w})", (match,)
        ).fetchall()
        out = [papers[r].id for (r,) in rows if _passes(query, papers[r], cats)]
        return out[:K_RECALL]

    try:
        yield rank
    finally:
        db.close()


@contextmanager
def rank_bm25_ranker(papers: Sequence[PaperIn]) -> Iterator[Ranker]:
    from rank_bm25 import BM25Okapi

    docs = [
        _TOKEN.findall(
            " ".join([p.title, " ".join(p.ai_keywords), p.abstract, " ".join(p.authors)]).lower()
        )
        for p in papers
    ]
    bm25 = BM25Okapi(docs)

    def rank(text: str) -> list[str]:
        query = parse_query(text, NOW)
        words, phrases, authors, cats, _ = _terms(query)
        tokens = (
            words
            + [t for p in phrases for t in p]
            + [t for a in authors for t in _TOKEN.findall(a)]
        )
        scores = bm25.get_scores(tokens) if tokens else [float(p.upvotes or 0) for p in papers]
        order = sorted(range(len(papers)), key=lambda i: -scores[i])
        out = [papers[i].id for i in order if scores[i] > 0 and _passes(query, papers[i], cats)]
        return out[:K_RECALL]

    yield rank


SYSTEMS = ("paperboy", "fts5", "rank_bm25")


def evaluate(
    papers: Sequence[PaperIn], judgments: Sequence[dict[str, Any]], systems: Sequence[str] = SYSTEMS
) -> list[Scored]:
    makers = {"paperboy": paperboy_ranker, "fts5": fts5_ranker, "rank_bm25": rank_bm25_ranker}
    present = {p.id for p in papers}
    results = [Scored(j["q"], j.get("kind", ""), {}, {}, {}) for j in judgments]
    for name in systems:
        with makers[name](papers) as rank:
            for j, scored in zip(judgments, results, strict=True):
                grades = {pid: g for pid, g in j["grades"].items() if pid in present}
                ranked = rank(j["q"])
                scored.top[name] = ranked
                scored.ndcg[name] = ndcg(ranked, grades)
                scored.recall[name] = recall(ranked, grades)
    return results


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
