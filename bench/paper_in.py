"""Benchmark: what the PaperIn gate (bot/paper_in.py) costs the import (bench, not a test).

Every paper passes `clean_paper` before the store. Measured in the same run, on a generated
file of the Kaggle snapshot's shape (bench/ingest.py's generator):

1. CPU per paper: `clean_paper` over parsed papers, against parsing the same lines (the
   baseline the gate rides on);
2. import rate of the sample into a fresh SQLite store + tantivy index, with the gate and with
   the gate bypassed (the baseline), alternating, median of 3 each.

Usage: .venv/bin/python bench/paper_in.py [--lines 50000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot.store as store_module  # noqa: E402
from bench.ingest import NOW, OUT, generate, open_store  # noqa: E402
from bot.paper_in import clean_paper  # noqa: E402
from bot.sources.snapshot import import_snapshot, parse_snapshot_line  # noqa: E402


def cpu_per_item(lines: list[bytes]) -> tuple[float, float]:
    """(parse CPU s per line, clean CPU s per paper), over the same records."""
    start = time.process_time()
    papers = [parse_snapshot_line(line) for line in lines]
    parse = (time.process_time() - start) / len(lines)
    kept = [p for p in papers if p is not None]
    start = time.process_time()
    for paper in kept:
        clean_paper(paper)
    clean = (time.process_time() - start) / len(kept)
    return parse, clean


def import_rate(data: Path, gate: bool) -> float:
    names: dict[str, Any] = vars(store_module)  # the store's binding of the gate
    original = names["clean_paper"]
    if not gate:
        names["clean_paper"] = lambda paper: paper
    try:
        store = open_store(OUT / "gate_store")
        start = time.perf_counter()
        report = import_snapshot(store, data, NOW)
        if store.index is not None:
            store.index.close()
        elapsed = time.perf_counter() - start
        store.engine.dispose()
        return report.lines / elapsed
    finally:
        names["clean_paper"] = original


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    data = OUT / f"gate_{args.lines}.jsonl"
    if not data.exists():
        generate(data, args.lines)
    print(f"load average {os.getloadavg()[0]:.1f} (shared machine: compare ratios)")

    lines = data.read_bytes().splitlines()
    runs = [cpu_per_item(lines) for _ in range(3)]
    parse = statistics.median(r[0] for r in runs)
    clean = statistics.median(r[1] for r in runs)
    print(
        f"CPU per item, median of 3: parse {parse * 1e6:.1f} us/line (baseline), "
        f"clean_paper {clean * 1e6:.1f} us/paper; ratio clean/parse {clean / parse:.2f}"
    )

    with_gate, without = [], []
    for _ in range(3):
        without.append(import_rate(data, gate=False))
        with_gate.append(import_rate(data, gate=True))
    ours, base = statistics.median(with_gate), statistics.median(without)
    print(
        f"import of {args.lines:,} lines (store + index), median of 3: with the gate "
        f"{ours:,.0f} lines/s; baseline without it {base:,.0f} lines/s; "
        f"ratio {ours / base:.2f}"
    )


if __name__ == "__main__":
    main()
