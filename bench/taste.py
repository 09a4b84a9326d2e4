"""What reactions cost a digest tick: `open_due` (select, rank, claim every due channel) timed
on the digest bench's store (bench/digest.py), three ways in the same run, interleaved:

- "before": the taste lookup switched off (what the tick did before reactions existed);
- "no reactions": the code as it is, no channel has a reaction (one empty indexed lookup per
  5,000 channels): must be within noise of "before", and its selections identical;
- "with reactions": a share of the channels (`--reacting`, default 30%) each with
  `--reactions` 👍/👎 (default 20) on posts of 1 to 10 papers: the cost of ranking by taste.

Usage:
    .venv/bin/python bench/taste.py --papers 200000 --dir /work/bench-data/taste
The store and its index are built once into --dir and reused by later runs (--papers equal).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.digest import MAX_NEW, NOW, SLOT, build_store, full_index, new_cutoff, reset  # noqa: E402
from bot import digest_taste  # noqa: E402
from bot.delivery_open import open_due  # noqa: E402
from bot.ledger import Ledger  # noqa: E402
from bot.models import Paper, Reaction  # noqa: E402
from bot.store import PaperStore  # noqa: E402
from bot.taste import Taste  # noqa: E402

Tick = Callable[[], tuple[float, dict[str, list[str]]]]


def tick(engine: Engine, store: PaperStore, since: Any, channels: int) -> Tick:
    def run() -> tuple[float, dict[str, list[str]]]:
        import time

        reset(engine, since, channels)
        ledger = Ledger(engine, "bench")
        t0 = time.perf_counter()
        outgoing, _ = open_due(store, ledger, NOW)
        seconds = time.perf_counter() - t0
        return seconds, {o.channel_key: list(o.paper_ids) for o in outgoing}

    return run


def without_taste(run: Tick) -> tuple[float, dict[str, list[str]]]:
    real = digest_taste.tastes

    def none(_engine: Engine, _keys: Any) -> dict[str, Taste]:
        return {}

    digest_taste.tastes = none  # type: ignore[assignment]
    try:
        return run()
    finally:
        digest_taste.tastes = real


def add_reactions(engine: Engine, channels: int, share: float, per: int) -> int:
    """`per` reactions in `share` of the channels, on recent papers (old ones: reacted posts)."""
    rng = random.Random(5)
    with Session(engine) as session:
        ids = list(
            session.scalars(select(Paper.id).order_by(Paper.first_seen_at.desc()).limit(20_000))  # type: ignore[attr-defined]
        )[MAX_NEW:]
    rows = []
    for c in range(channels):
        if rng.random() >= share:
            continue
        key = f"slack:T{c % 50:03d}:C{c:06d}"
        for r in range(per):
            papers = rng.sample(ids, rng.choice((1, 1, 1, 5, 10)))
            rows.append(
                {
                    "channel_key": key,
                    "message_ref": f"C{c:06d}:1700000000.{r:06d}",
                    "user_id": f"U{r % 7}",
                    "sign": 1 if rng.random() < 0.7 else -1,
                    "paper_ids": papers,
                    "active": True,
                    "event_at": 1700000000.0 + r,
                    "updated_at": SLOT - timedelta(days=1),
                }
            )
    with engine.begin() as conn:
        conn.execute(delete(Reaction))
        for i in range(0, len(rows), 20_000):
            conn.execute(Reaction.__table__.insert(), rows[i : i + 20_000])  # type: ignore[attr-defined]
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, default=200_000)
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reacting", type=float, default=0.3)
    parser.add_argument("--reactions", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    engine = build_store(
        f"sqlite:///{args.dir / f'digest-{args.papers}.db'}", args.papers, args.channels
    )
    with engine.begin() as conn:
        conn.execute(delete(Reaction))
    index = full_index(engine, args.dir / f"index-sqlite-{args.papers}", args.papers + MAX_NEW)
    store = PaperStore(engine, index)
    run = tick(engine, store, new_cutoff(engine, args.new), args.channels)
    before, plain = [], []
    same = True
    for _ in range(args.repeat):  # interleaved: the machine's load hits both alike
        t_before, sel_before = without_taste(run)
        t_plain, sel_plain = run()
        before.append(t_before)
        plain.append(t_plain)
        same = same and sel_before == sel_plain
    n = add_reactions(engine, args.channels, args.reacting, args.reactions)
    taught = [run()[0] for _ in range(args.repeat)]
    base = statistics.median(before)
    print(f"{args.papers:,} old + {MAX_NEW:,} recent papers, {args.channels:,} channels due")
    for name, times in (("before (no taste lookup)", before), ("no reactions", plain)):
        med = statistics.median(times)
        print(f"  {name:<26} median {med:6.3f} s  (min {min(times):.3f}) x{med / base:.3f}")
    med = statistics.median(taught)
    print(
        f"  {'with reactions':<26} median {med:6.3f} s  (min {min(taught):.3f}) x{med / base:.3f}"
        f"  ({n:,} reactions in {args.reacting:.0%} of channels)"
    )
    print(f"  selections identical without reactions: {'yes' if same else 'NO'}")
    with engine.begin() as conn:
        conn.execute(delete(Reaction))
    index.close()
    engine.dispose()


if __name__ == "__main__":
    main()
