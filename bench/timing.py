"""What the benchmark scripts share: a sibling script loaded as a module (to reuse its corpus
and build path, and so the same store in --workdir), the --papers/--workdir/--keep arguments,
a call timed after a warm-up, and p95.

Not a benchmark itself; the scripts put the repository root on sys.path and import it as
`bench.timing`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def sibling(name: str) -> Any:
    """bench/<name>.py as the module `bench_<name>` (loaded once; registered in sys.modules
    because its dataclasses look their module up)."""
    module_name = f"bench_{name}"
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def store_args(doc: str | None, prefix: str) -> tuple[argparse.Namespace, Path]:
    """--papers (default 1M), --workdir (default: a new temporary directory named `prefix`...)
    and --keep (keep the store for a later run); the work directory, created."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    ap.add_argument("--papers", type=int, default=1_000_000)
    ap.add_argument("--workdir", help="where the store is (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the store for a later run")
    args = ap.parse_args()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix=prefix))
    workdir.mkdir(parents=True, exist_ok=True)
    return args, workdir


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Seconds per call of `fn`, `repeat` calls after one warm-up call."""
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank) of `samples`."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
