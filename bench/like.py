"""More-like-this benchmark: `/papers like` at a million papers, with same-run baselines.

Reuses bench/search.py's synthetic 1M-paper store (its `Corpus` and ingest path, the same file
names in --workdir, so a store built by either script serves both). For a fixed sample of
papers spread over the corpus it times:

- `bot.similar.similar` for one paper, for three papers together, and with `sort:new`,
  `since:1y` (a long window) and `since:30d` (a short one): the part that grows with the store;
- the whole `/papers like <id>` command through `BotService` (parse, rows, similarity, cards);

and, in the same run, two baselines on the same papers:

- NAIVE: what a bot does without a similarity query: an OR of the paper's distinct title and
  abstract words through the normal search path (the first 32 words, what the query language
  takes), result cache off;
- tantivy's own `more_like_this_document_fields_query` on the same text (25 terms, min term
  frequency 1), for reference: the index stores no text, so its by-document form cannot run.

Budget (issue 15): p95 <= 100 ms at 1M papers, inside the platforms' 3 s ack.

    .venv/bin/python bench/like.py --workdir /work/bench-data/like --keep   # 1M, built once
    .venv/bin/python bench/like.py --papers 20000                          # quick
Not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tantivy import Query as TQuery  # noqa: E402

from bench import timing  # noqa: E402
from bench.timing import sibling, store_args  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.index import open_index  # noqa: E402
from bot.messages import ChannelRef, Invocation, ReplyKind, UserRef  # noqa: E402
from bot.query import Sort, parse_query  # noqa: E402
from bot.search import search_papers  # noqa: E402
from bot.service import BotService  # noqa: E402
from bot.similar import similar  # noqa: E402
from bot.store import PaperStore  # noqa: E402

search_bench: Any = sibling("search")

NOW = search_bench.NOW
SAMPLE = 40  # papers asked about
REPEAT = 3  # runs of each after a warm-up
LIMIT = 10


def paper_key(i: int) -> str:
    """The id bench/search.py's corpus gives its i-th paper."""
    return f"{16 + i // 100_000:02d}{(i // 10_000) % 10 + 1:02d}.{i % 100_000:05d}"


def timed(fn: Callable[[], object]) -> list[float]:
    """Milliseconds per call, `REPEAT` calls after a warm-up."""
    return [seconds * 1000 for seconds in timing.timed(fn, REPEAT)]


def pct(samples: list[float]) -> tuple[float, float]:
    return sorted(samples)[len(samples) // 2], timing.p95(samples)


def naive(store: PaperStore, key: str) -> object:
    """The baseline: OR of the paper's distinct title and abstract words, normal search."""
    paper = store.get(key)
    assert paper is not None
    words = list(
        dict.fromkeys(w.strip(".,()").lower() for w in f"{paper.title} {paper.abstract}".split())
    )
    words = [w for w in words if w.isalnum() and w != "or"][:32]
    return search_papers(store, parse_query(" OR ".join(words), NOW), LIMIT + 1, NOW)


def tantivy_mlt(store: PaperStore, key: str) -> object:
    """tantivy's more-like-this on the paper's text (the document-fields form)."""
    paper = store.get(key)
    assert paper is not None
    index = store.search_index()
    fields = {"title": [paper.title], "abstract": [paper.abstract or ""]}
    if paper.ai_keywords:
        fields["keywords"] = list(paper.ai_keywords)
    query = TQuery.more_like_this_document_fields_query(
        index.schema, fields, min_doc_frequency=2, min_term_frequency=1, max_query_terms=25
    )
    return index.read(lambda searcher: searcher.search(query, LIMIT + 1, count=False).hits)


_LOOP = asyncio.new_event_loop()


def whole_command(service: BotService, text: str) -> object:
    inv = Invocation(text, ChannelRef("bench", "w", "c"), UserRef("bench", "u"))
    reply = _LOOP.run_until_complete(service.ask(inv))
    assert reply.kind is ReplyKind.RESULTS, (text, reply.title)
    return reply


def run(store: PaperStore, n: int) -> None:
    assert store.index is not None
    store.index.result_cache = 0  # every search computed: the baseline gets no cache either
    step = max(n // SAMPLE, 1)
    keys = [paper_key(i) for i in range(0, n, step)][:SAMPLE]
    triples = [keys[i : i + 3] for i in range(0, len(keys) - 2, 3)]
    year, month = NOW - timedelta(days=365), NOW - timedelta(days=30)
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    rows: list[tuple[str, list[float]]] = [
        ("like 1 paper (similar)", []),
        ("like 3 papers (similar)", []),
        ("like 1 paper sort:new", []),
        ("like 1 paper since:1y", []),
        ("like 1 paper since:30d", []),
        ("/papers like <id> whole command", []),
        ("BASELINE naive OR of its words", []),
        ("REFERENCE tantivy more_like_this", []),
    ]
    for key in keys:
        rows[0][1].extend(timed(lambda k=key: similar(store, [k], now=NOW, limit=LIMIT)))  # type: ignore[misc]
        rows[2][1].extend(
            timed(lambda k=key: similar(store, [k], now=NOW, limit=LIMIT, sort=Sort.NEW))  # type: ignore[misc]
        )
        rows[3][1].extend(
            timed(lambda k=key: similar(store, [k], now=NOW, since=year, limit=LIMIT))
        )  # type: ignore[misc]
        rows[4][1].extend(
            timed(lambda k=key: similar(store, [k], now=NOW, since=month, limit=LIMIT))  # type: ignore[misc]
        )
        rows[5][1].extend(timed(lambda k=key: whole_command(service, f"like {k}")))  # type: ignore[misc]
        rows[6][1].extend(timed(lambda k=key: naive(store, k)))  # type: ignore[misc]
        rows[7][1].extend(timed(lambda k=key: tantivy_mlt(store, k)))  # type: ignore[misc]
    for triple in triples:
        rows[1][1].extend(timed(lambda t=triple: similar(store, t, now=NOW, limit=LIMIT)))  # type: ignore[misc]
    hits = similar(store, [keys[0]], now=NOW, limit=LIMIT)
    assert len(hits) == LIMIT and keys[0] not in {h.id for h in hits}
    print(f"{'what':<36} {'p50 ms':>8} {'p95 ms':>8} {'runs':>5}")
    figures = {}
    for name, samples in rows:
        p50, p95 = pct(samples)
        figures[name] = (p50, p95)
        print(f"{name:<36} {p50:8.2f} {p95:8.2f} {len(samples):5d}")
    one, base = figures["like 1 paper (similar)"], figures["BASELINE naive OR of its words"]
    three = figures["like 3 papers (similar)"]
    print(
        f"ratio naive / like: p50 {base[0] / one[0]:.1f}x, p95 {base[1] / one[1]:.1f}x "
        f"(3 papers: p95 {base[1] / three[1]:.1f}x); budget p95 <= 100 ms: "
        f"1 paper {'met' if one[1] <= 100 else 'MISSED'}, "
        f"3 papers {'met' if three[1] <= 100 else 'MISSED'}"
    )


def main() -> None:
    args, workdir = store_args(__doc__, "pb-like-")
    n = args.papers
    print(f"paperboy more-like-this benchmark, {n:,} papers")
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}"
    )
    store = PaperStore(
        make_engine(f"sqlite:///{workdir / f'store-{n}.db'}"),
        index=open_index(workdir / f"index-{n}"),
    )
    try:
        if store.count() < n:
            print(f"building {n:,} papers into {workdir} (once; --keep to reuse) ...", flush=True)
            search_bench.build_store(store, search_bench.Corpus(n), n)
        elif store.index is not None and store.index.doc_count() < n:
            store.sync_index(rebuild=True)
            store.index.optimize()
        run(store, n)
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
