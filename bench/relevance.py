"""Search quality: nDCG@5 and recall@10 per query for paperboy, SQLite FTS5 bm25 and rank_bm25.

The corpus is the real captured papers in ../shared/fixtures plus the bundled demo set; the
judgments (bench/relevance/judgments.json) grade papers 0-3 per query:
3 = exactly what the query asks for, 2 = clearly about it, 1 = touches it, 0 = not about it
(unjudged papers count 0). All three systems run in the same process on the same corpus.

    .venv/bin/python bench/relevance.py               # the table and the means
    .venv/bin/python bench/relevance.py --pool "kv cache"   # candidates to judge for a query
    .venv/bin/python bench/relevance.py --floor   # what the digest relevance floor keeps/cuts
Not a test: tests/test_relevance.py holds paperboy to the floor reached here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relevance.corpus import SHARED_FIXTURES, load_corpus, load_judgments  # noqa: E402
from bench.relevance.evaluate import (
    SYSTEMS,
    evaluate,
    fts5_ranker,
    mean,
    paperboy_ranker,
    rank_bm25_ranker,
)  # noqa: E402
from bench.relevance.floor import GROUPS, chosen, judged_matches, tally  # noqa: E402


def show_pool(text: str) -> None:
    """Every paper any system ranks in its top 10, or with a query word in the title."""
    papers = load_corpus()
    by_id = {p.id: p for p in papers}
    judged = next((j["grades"] for j in load_judgments() if j["q"] == text), {})
    pool: dict[str, list[str]] = {}
    for name, maker in (("pb", paperboy_ranker), ("fts", fts5_ranker), ("bm25", rank_bm25_ranker)):
        with maker(papers) as rank:
            for i, pid in enumerate(rank(text)):
                pool.setdefault(pid, []).append(f"{name}{i + 1}")
    words = [w for w in text.lower().split() if ":" not in w and len(w) > 2]
    for p in papers:
        if any(w[:5] in p.title.lower() for w in words):
            pool.setdefault(p.id, [])
    for pid, where in pool.items():
        p = by_id[pid]
        print(f"{pid}\tgrade={judged.get(pid, '-')}\t{' '.join(where)}")
        print(f"   T: {p.title}")
        if p.ai_keywords:
            print(f"   K: {'; '.join(p.ai_keywords)}")
        print(f"   A: {p.abstract[:400]}")


def show_floor() -> None:
    """Per pair of shares (whole text, abstract alone): the judged matches a digest keeps."""
    from bench.relevance.evaluate import NOW
    from bot.digest_floor import ABSTRACT_SHARE, FLOOR_SHARE

    matches = judged_matches(load_corpus(), load_judgments())
    print(f"{len(matches)} matches of the judged queries over the whole corpus")
    print(f"{'text':>5} {'abstr':>5}" + "".join(f"  {n:>18}" for n in GROUPS) + "  (kept)")
    rows: list[tuple[float, float | None]] = [(0.0, None)]
    rows += [(s, None) for s in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)]
    rows += [(s, a) for s in (0.2, 0.25, 0.3) for a in (0.3, 0.5, 0.6)]
    for share, abstract in rows:
        t = tally(matches, share, abstract)
        cells = "".join(
            f"  {t.kept[n]:>4}/{t.total[n]:<4} {t.kept_share(n):5.0%}    " for n in GROUPS
        )
        mark = "  <- bot.digest_floor" if (share, abstract) == (FLOOR_SHARE, ABSTRACT_SHARE) else ""
        print(f"{share:5.2f} {abstract if abstract is not None else '-':>5}{cells}{mark}")
    t = chosen(matches, NOW)
    print(
        f"digest floor ({FLOOR_SHARE} of the topic's best, or {ABSTRACT_SHARE} of its best "
        f"abstract): keeps {t.kept_share('relevant (2-3)'):.0%} of the relevant matches, cuts "
        f"{1 - t.kept_share('not about it (0)'):.0%} of those not about it (no floor: keeps "
        "100%, cuts 0%)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", help="print the candidates to judge for one query")
    parser.add_argument("--floor", action="store_true", help="what the digest floor keeps/cuts")
    args = parser.parse_args()
    if args.floor:
        show_floor()
        return 0
    if args.pool:
        show_pool(args.pool)
        return 0
    if not SHARED_FIXTURES.is_dir():
        print(f"{SHARED_FIXTURES} is absent: only the demo set is searched", file=sys.stderr)
    papers = load_corpus()
    judgments = load_judgments()
    results = evaluate(papers, judgments)
    print(f"corpus: {len(papers)} papers, {len(judgments)} judged queries")
    head = f"{'query':34} {'kind':9}" + "".join(f" {s[:9]:>9}" for s in SYSTEMS) + "   recall@10"
    print(f"{'':44}{'nDCG@5':^30}")
    print(head)
    for r in results:
        cells = "".join(f" {r.ndcg[s]:9.3f}" for s in SYSTEMS)
        recalls = " ".join(f"{r.recall[s]:.2f}" for s in SYSTEMS)
        print(f"{r.query[:34]:34} {r.kind[:9]:9}{cells}   {recalls}")
    print("-" * len(head))
    means = "".join(f" {mean([r.ndcg[s] for r in results]):9.3f}" for s in SYSTEMS)
    recalls = " ".join(f"{mean([r.recall[s] for r in results]):.2f}" for s in SYSTEMS)
    print(f"{'mean':34} {'':9}{means}   {recalls}")
    worst = min(results, key=lambda r: r.ndcg["paperboy"])
    print(f"paperboy's lowest nDCG@5: {worst.ndcg['paperboy']:.3f} ({worst.query})")
    gap = mean([r.ndcg["paperboy"] for r in results]) - mean([r.ndcg["fts5"] for r in results])
    print(f"paperboy - fts5 (mean nDCG@5): {gap:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
