"""Subscribe-preview benchmark: what a topic would have brought over the last four weeks.

`/papers subscribe <query>` answers with `bot.topic_preview.preview`: one index search over the
four weeks (count + best three), one count per day (busiest day), three papers loaded. Timed
here on the 1M-paper SQLite store of bench/pipeline.py (the same generator and ingest path;
built once into --workdir, reused later), per topic, p50 and p95 over all calls.

Same-run baseline: the straightforward way, which loads the window's matching papers (every id
from the index, then the rows) and counts them per day in Python.

Usage:
    .venv/bin/python bench/subscribe_preview.py --workdir /tmp/pb-preview --keep
    .venv/bin/python bench/subscribe_preview.py --papers 20000        # quick
"""

from __future__ import annotations

import shutil
import statistics
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import p95, sibling, store_args, timed  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.index import open_index  # noqa: E402
from bot.query import parse_query  # noqa: E402
from bot.search import announced_matches  # noqa: E402
from bot.store import PaperStore  # noqa: E402
from bot.times import aware  # noqa: E402
from bot.topic_preview import WEEKS, preview  # noqa: E402

pipeline: Any = sibling("pipeline")

NOW = pipeline.NOW
TOPICS = ("learning", "dpo", "diffusion video", "language models", "graph neural networks")
REPEAT = 10


def loaded_preview(store: PaperStore, topic: str) -> tuple[int, int]:
    """The baseline: every matching paper of the window loaded, counted per day in Python."""
    query = parse_query(topic, NOW)
    start = NOW - timedelta(weeks=WEEKS)
    total = announced_matches(store, query, start, NOW, 1).total
    ids = [r.id for r in announced_matches(store, query, start, NOW, max(total, 1)).hits]
    days = Counter(aware(p.announced_at).date() for p in store.get_many(ids) if p.announced_at)
    return len(ids), max(days.values(), default=0)


def main() -> None:
    args, workdir = store_args(__doc__, "pb-prev-")
    n = args.papers
    store = PaperStore(
        make_engine(f"sqlite:///{workdir / f'pipeline-{n}.db'}"),
        index=open_index(workdir / f"pipeline-index-{n}"),
    )
    try:
        if store.count() < n:
            print(f"building {n:,} papers into {workdir} (once; --keep to reuse) ...", flush=True)
            pipeline.build(store, n)
        run(store, n)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def run(store: PaperStore, n: int) -> None:
    print(f"subscribe preview on {n:,} papers, {len(TOPICS)} topics x {REPEAT} runs")
    ours: list[float] = []
    base: list[float] = []
    for topic in TOPICS:
        shown = preview(store, topic, NOW)
        loaded, busiest = loaded_preview(store, topic)
        assert (shown.total, shown.busiest) == (loaded, busiest), (topic, shown, loaded, busiest)
        mine = timed(lambda t=topic: preview(store, t, NOW), REPEAT)  # type: ignore[misc]
        theirs = timed(lambda t=topic: loaded_preview(store, t), max(2, REPEAT // 5))  # type: ignore[misc]
        ours += mine
        base += theirs
        print(
            f"  {topic!r}: {shown.total:,} papers in 4 weeks (busiest day {shown.busiest}); "
            f"preview median {statistics.median(mine) * 1e3:.1f} ms, "
            f"loading them {statistics.median(theirs) * 1e3:.1f} ms"
        )
    p50, p50_base = statistics.median(ours), statistics.median(base)
    print(
        f"subscribe preview: p50 {p50 * 1e3:.1f} ms, p95 {p95(ours) * 1e3:.1f} ms; "
        f"BASELINE loading the window's papers: p50 {p50_base * 1e3:.1f} ms, "
        f"p95 {p95(base) * 1e3:.1f} ms; ratio p50 {p50_base / p50:.1f}x"
    )


if __name__ == "__main__":
    main()
