"""What the Prometheus instrumentation costs a command: `BotService.handle("dpo")` on the demo
store with metrics recorded, against the same calls with recording switched off (the baseline),
in alternating rounds so machine noise hits both alike.

    python bench/metrics_overhead.py [--calls 2000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot import metrics
from bot.config import Settings
from bot.demo import load_demo_papers
from bot.messages import ChannelRef, Invocation, UserRef
from bot.runtime import build_service, open_store


async def timed_calls(service: object, calls: int) -> list[float]:
    inv = Invocation("dpo", ChannelRef("console", "local", "bench"), UserRef("console", "b"))
    out = []
    for _ in range(calls):
        began = time.perf_counter()
        await service.ask(inv)  # type: ignore[attr-defined]
        out.append(time.perf_counter() - began)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(f"machine: {platform.platform()} · python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(None, {"PAPERBOY_DATA_DIR": str(Path(tmp))})
        store = open_store(settings)
        store.upsert_many(load_demo_papers(), datetime.now(UTC))
        service = build_service(settings, store)
        real = metrics.observe_command
        samples: dict[str, list[float]] = {"metrics": [], "baseline": []}
        await timed_calls(service, 200)  # warm up caches and the index reader
        for n in range(args.rounds):
            for mode in ("metrics", "baseline") if n % 2 == 0 else ("baseline", "metrics"):
                metrics.observe_command = real if mode == "metrics" else (lambda *_: None)
                samples[mode] += await timed_calls(service, args.calls)
        metrics.observe_command = real
        store.close()
    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    p95 = {k: statistics.quantiles(v, n=20)[18] * 1e6 for k, v in samples.items()}
    for mode in ("baseline", "metrics"):
        print(
            f"{mode:>8}: median {med[mode]:8.1f} µs   p95 {p95[mode]:8.1f} µs   "
            f"({len(samples[mode])} calls)"
        )
    print(
        f"ratio metrics/baseline: median {med['metrics'] / med['baseline']:.3f}   "
        f"p95 {p95['metrics'] / p95['baseline']:.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
