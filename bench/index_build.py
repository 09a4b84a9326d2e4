"""Index build rate with and without the acronym tokens of `bot.index_aliases`.

Builds the tantivy index (on disk, as `paperboy import` does: 2,000-paper upserts, then a
commit) from the synthetic papers of bench/search.py, alternately with the curated acronym
scan switched off (the baseline: documents as before) and on, in the same run, and prints
papers/s (wall and CPU over all threads) and the Python cost of building one document.

    .venv/bin/python bench/index_build.py [--papers 100000] [--rounds 2]
Not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import Corpus  # noqa: E402

from bot import index_schema  # noqa: E402
from bot.index import open_index  # noqa: E402
from bot.index_aliases import IndexedForms  # noqa: E402

BATCH = 2_000


def rows(n: int) -> list[dict[str, Any]]:
    out = []
    for p in Corpus(n, seed=11).papers():
        row = {name: getattr(p, name, None) for name in index_schema.ROW_FIELDS}
        row.update(first_seen_at=p.published_at, updated_at=p.published_at, announced_at=None)
        out.append(row)
    return out


@contextlib.contextmanager
def acronyms(on: bool) -> Iterator[None]:
    """Documents with (on) or without (off: the baseline) the acronym scan."""
    scan = index_schema._add_texts

    def plain(doc: Any, texts: list[tuple[str, str]], _forms: IndexedForms) -> None:
        for field, text in texts:
            doc.add_text(field, text)

    index_schema._add_texts = scan if on else plain  # type: ignore[assignment]
    try:
        yield
    finally:
        index_schema._add_texts = scan


def build(papers: list[dict[str, Any]], workdir: Path) -> tuple[float, float]:
    """Seconds (wall, CPU of this process over all threads) to index `papers` and commit."""
    path = workdir / "index"
    shutil.rmtree(path, ignore_errors=True)
    index = open_index(path)
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(papers), BATCH):
        index.upsert(papers[start : start + BATCH])
    index.flush()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    index.close()
    return wall, cpu


def document_us(papers: list[dict[str, Any]]) -> float:
    """Python time to build one document, in microseconds."""
    t0 = time.perf_counter()
    for row in papers:
        index_schema.document(row)
    return (time.perf_counter() - t0) / len(papers) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    papers = rows(args.papers)
    index_schema.document(papers[0])  # warm the analyser and the curated forms
    found = sum(len(index_schema.indexed_forms().found(r["abstract"])) for r in papers[:10_000])
    print(f"{len(papers):,} synthetic papers; acronym tokens per abstract: {found / 10_000:.3f}")
    figures: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for on in (False, True):
                with acronyms(on):
                    doc = document_us(papers[:20_000])
                    wall, cpu = build(papers, Path(tmp))
                figures[on].append((len(papers) / wall, len(papers) / cpu, doc))
    for on in (False, True):
        rate = statistics.median(f[0] for f in figures[on])
        cpu_rate = statistics.median(f[1] for f in figures[on])
        doc = statistics.median(f[2] for f in figures[on])
        label = "with acronym tokens " if on else "without (baseline)  "
        print(
            f"{label} {rate:9,.0f} papers/s wall  {cpu_rate:9,.0f} papers per CPU-s  "
            f"document {doc:5.1f} us"
        )
    base, new = (statistics.median(f[0] for f in figures[on]) for on in (False, True))
    print(f"ratio with / without: {new / base:.2f} (wall)")


if __name__ == "__main__":
    main()
