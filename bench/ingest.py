"""Benchmark: parsing and importing the Kaggle arXiv snapshot format (bench, not a test).

Generates a JSON Lines file of the snapshot's shape (14 keys, wrapped titles, ~1 KB
abstracts, TeX, old- and new-style ids) in bench/out/, then measures in the same run:

1. parse rate: `iter_snapshot_lines` over the whole file (orjson), against a baseline of
   stdlib `json.loads` per line with the same field handling, on a sample;
2. full import: `import_snapshot` into a fresh SQLite store with its tantivy index (when
   `bot.index` exists), against a naive baseline (one INSERT and commit per paper) on a
   sample;
3. a second import of the same file (idempotency: nothing added) on a sample.

Usage: .venv/bin/python bench/ingest.py [--lines 1000000] [--sample 50000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.db import make_engine  # noqa: E402
from bot.sources import snapshot  # noqa: E402
from bot.sources.snapshot import import_snapshot, iter_snapshot_lines  # noqa: E402
from bot.store import PaperStore  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
WORDS = (
    "model language learning neural network transformer attention training data "
    "optimization gradient reward preference policy reinforcement alignment benchmark "
    "evaluation quantum field theory lattice gauge symmetry energy spectrum galaxy "
    "dark matter graph algorithm complexity bound theorem proof estimate stochastic "
    "process inference bayesian sampling diffusion generative image vision robot "
    "control agent reasoning retrieval augmented large scale efficient sparse dense"
).split()
CATS = ["cs.CL", "cs.LG", "cs.AI", "cs.CV", "stat.ML", "hep-th", "hep-ph", "math.CO",
        "quant-ph", "astro-ph.GA", "cond-mat.str-el", "math.PR"]  # fmt: skip


def _wrap(text: str, width: int = 80, indent: str = "") -> str:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)


def generate(path: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for n in range(count):
            if n % 50 == 0:
                key = f"hep-th/{9100000 + n // 50:07d}"  # old-style ids
            else:
                key = f"{7 + n // 99_999 % 90:02d}{1 + n // 8_000 % 12:02d}.{n % 99_999:05d}"
            title = " ".join(rng.choices(WORDS, k=rng.randint(6, 14))).capitalize()
            if n % 7 == 0:
                title += r" with $\Lambda_{\alpha}$"
            abstract = ". ".join(
                " ".join(rng.choices(WORDS, k=rng.randint(10, 22))).capitalize()
                for _ in range(rng.randint(6, 10))
            )
            names = [
                (rng.choice(["Smith", "Bal\\'azs", "Nguyen", "M\\\"uller", "Chen", "Rossi"]),
                 rng.choice(["A.", "B. C.", "Maria", "Jun", "E. L."]))
                for _ in range(rng.randint(1, 6))
            ]  # fmt: skip
            versions = [
                {"version": f"v{v + 1}", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}
                for v in range(rng.randint(1, 3))
            ]
            record = {
                "id": key,
                "submitter": names[0][1] + " " + names[0][0],
                "authors": ", ".join(f"{f} {last}" for last, f in names),
                "title": _wrap(title, 70, "  "),
                "comments": rng.choice([None, "12 pages, 3 figures"]),
                "journal-ref": None,
                "doi": rng.choice([None, "10.1103/PhysRevD.76.013009"]),
                "report-no": None,
                "categories": " ".join(rng.sample(CATS, rng.randint(1, 3))),
                "license": None,
                "abstract": "  " + _wrap(abstract + ".") + "\n",
                "versions": versions,
                "update_date": "2008-11-26",
                "authors_parsed": [[last.replace("\\'a", "á"), f, ""] for last, f in names],
            }
            out.write(json.dumps(record) + "\n")
    os.replace(tmp, path)


def parse_rate(path: Path, limit: int | None = None) -> tuple[int, float]:
    """Lines parsed and the CPU seconds it took (CPU time: the machine is shared)."""
    start = time.process_time()
    lines = sum(1 for _ in iter_snapshot_lines(path, limit=limit))
    return lines, time.process_time() - start


def baseline_parse(path: Path, limit: int) -> tuple[int, float]:
    """The same field handling with stdlib json instead of orjson."""
    saved = snapshot._loads
    snapshot._loads = json.loads
    try:
        return parse_rate(path, limit)
    finally:
        snapshot._loads = saved


def baseline_import(path: Path, limit: int, db: Path) -> tuple[int, float]:
    """Naive: json.loads per line, one INSERT and one commit per paper, no index."""
    db.unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE paper (id TEXT PRIMARY KEY, title TEXT, abstract TEXT, authors TEXT,"
        " categories TEXT)"
    )
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    with open(path, encoding="utf-8") as file:
        for line in file:
            if n >= limit:
                break
            row = json.loads(line)
            conn.execute(
                "INSERT OR REPLACE INTO paper VALUES (?, ?, ?, ?, ?)",
                (
                    row["id"],
                    " ".join(row["title"].split()),
                    " ".join(row["abstract"].split()),
                    json.dumps(row["authors"]),
                    json.dumps(row["categories"].split()),
                ),
            )
            conn.commit()
            n += 1
    elapsed = time.perf_counter() - start
    print(f"  (baseline wall {elapsed:.1f} s, CPU {time.process_time() - cpu:.1f} s)")
    conn.close()
    return n, elapsed


def _timed(func: Any, spent: dict[str, float], key: str) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent[key] += time.process_time() - start

    return wrapper


def open_store(workdir: Path) -> PaperStore:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{workdir / 'paperboy.db'}")
    try:
        from bot.index import open_index

        index = open_index(workdir / "index")
    except ImportError:  # the index module may not exist yet
        index = None
    return PaperStore(engine, index=index)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated store")
    args = parser.parse_args()

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} (shared machine: "
        "CPU seconds are printed beside wall time)"
    )
    data = OUT / f"snapshot_{args.lines}.jsonl"
    if not data.exists():
        t = time.perf_counter()
        generate(data, args.lines)
        print(f"generated {data.name} in {time.perf_counter() - t:.1f} s")
    size_mb = data.stat().st_size / 1e6
    print(
        f"file: {args.lines:,} lines, {size_mb:,.0f} MB ({size_mb * 1e3 / args.lines:.2f} KB/line)"
    )
    measure_parse(data, args.sample)
    store, rate = measure_import(data)
    measure_reimport(store, data, args.sample)
    measure_baseline(data, args.sample, rate)
    if not args.keep:
        shutil.rmtree(OUT / "import_store", ignore_errors=True)


def measure_parse(data: Path, sample: int) -> None:
    """1. Parsing: a sample against stdlib json (median of 3), then the whole file."""
    sample_rates, base_rates = [], []
    for _ in range(3):
        n, s = parse_rate(data, sample)
        sample_rates.append(n / s)
        n, s = baseline_parse(data, sample)
        base_rates.append(n / s)
    ours, base = statistics.median(sample_rates), statistics.median(base_rates)
    print(
        f"parse ({sample:,}-line sample, median of 3, per CPU second): {ours:,.0f} lines/s; "
        f"baseline stdlib json {base:,.0f} lines/s; ratio {ours / base:.2f}x"
    )
    t = time.perf_counter()
    n, s = parse_rate(data)
    wall = time.perf_counter() - t
    print(
        f"parse (whole file): {n:,} lines in {s:.1f} CPU s = {n / s:,.0f} lines/s "
        f"({wall:.1f} s wall = {n / wall:,.0f} lines/s)"
    )


def measure_import(data: Path) -> tuple[PaperStore, float]:
    """2. The whole file into a fresh store + index; returns the store and lines/s."""
    store = open_store(OUT / "import_store")
    print(f"index: {'tantivy (bot.index)' if store.index is not None else 'none (no bot.index)'}")
    spent = {"store": 0.0, "index": 0.0}  # CPU seconds inside each, for the breakdown
    store.upsert_many = _timed(store.upsert_many, spent, "store")  # type: ignore[method-assign]
    if store.index is not None:
        store.index.upsert = _timed(store.index.upsert, spent, "index")  # type: ignore[method-assign]
    t, cpu = time.perf_counter(), time.process_time()
    report = import_snapshot(store, data, NOW)
    if store.index is not None:
        store.index.close()  # commit and wait for the index's merges: part of the import
    full, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(
        f"import (whole file, store + index): {report.lines:,} lines, {report.added:,} added in "
        f"{full:.1f} s wall = {report.lines / full:,.0f} lines/s "
        f"(CPU {cpu:.1f} s in all threads; load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"  CPU breakdown: store SQL {spent['store'] - spent['index']:.1f} s, index "
        f"{spent['index']:.1f} s (+ its background threads), parse and the rest "
        f"{cpu - spent['store']:.1f} s"
    )
    assert store.count() == report.papers, "every parsed line is in the store"
    if store.index is not None:
        print(f"index documents: {store.index.doc_count():,}")
        assert store.index.doc_count() == report.papers, "every paper is in the index"
    return store, report.lines / full


def measure_reimport(store: PaperStore, data: Path, lines: int) -> None:
    """3. A second import of a sample: nothing is added."""
    sample = OUT / "sample.jsonl"
    with open(data, "rb") as src, open(sample, "wb") as dst:
        for i, line in enumerate(src):
            if i >= lines:
                break
            dst.write(line)
    t = time.perf_counter()
    again = import_snapshot(store, sample, NOW)
    rerun = time.perf_counter() - t
    print(
        f"re-import of the {lines:,}-line sample: {again.added} added, {again.updated} "
        f"updated, {again.unchanged:,} unchanged in {rerun:.1f} s"
    )
    if store.index is not None:
        store.index.close()
    store.engine.dispose()
    sample.unlink(missing_ok=True)


def measure_baseline(data: Path, sample: int, ours_rate: float) -> None:
    """The baseline import on a sample, same run."""
    n, s = baseline_import(data, min(sample, 20_000), OUT / "baseline.db")
    print(
        f"baseline import (json.loads + one INSERT/commit per paper, no index, {n:,}-line "
        f"sample): {n / s:,.0f} lines/s; ours {ours_rate:,.0f} lines/s; "
        f"ratio {ours_rate / (n / s):.1f}x"
    )
    (OUT / "baseline.db").unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        (OUT / f"baseline.db{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
