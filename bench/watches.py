"""Personal watches benchmark: the digest tick's cost for N users' daily DMs, against the same
tick for N channels with the same topics (the baseline, measured in the same run).

A user's watches are topics of their DM key `slack:T1:@U<n>` (bot/watches.py), so the tick's
work is the digest's; what watches add is one grouped query for the users' first-watch times
(`first_watched`, the no-backlog floor) and the floor check per candidate. What is timed is
`bot.delivery_open.open_due(store, ledger, now)`: due rows, topics, floors, the ledger's delivered
sets, selection (each distinct topic searched once), and the transaction that opens the runs
and claims the papers. The ledger is reset between runs; runs alternate between the two
populations.

Usage:
    .venv/bin/python bench/watches.py                      # 5,000 users x 3 watches, 20k papers
    .venv/bin/python bench/watches.py --users 10000 --papers 50000 --data /work/bench-data/w
The store is built once into --data (SQLite) and reused by later runs with the same sizes.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, update
from sqlmodel import Session, col

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.db import make_engine  # noqa: E402
from bot.delivery_open import open_due  # noqa: E402
from bot.index import PaperIndex  # noqa: E402
from bot.ledger import Ledger  # noqa: E402
from bot.models import Channel, Delivery, DigestRun, PaperIn, Subscription  # noqa: E402
from bot.store import PaperStore  # noqa: E402
from bot.watches import first_watched  # noqa: E402

SLOT = datetime(2026, 6, 17, 8, 0, tzinfo=UTC)
NOW = SLOT + timedelta(seconds=20)
TERMS = [f"t{i:04d}" for i in range(400)]
FILLER = [f"w{i:04d}" for i in range(3_000)]


def build(data: Path, papers: int, users: int) -> PaperStore:
    data.mkdir(parents=True, exist_ok=True)
    db = data / f"watches-{papers}-{users}.sqlite"
    fresh = not db.exists()
    store = PaperStore(make_engine(f"sqlite:///{db}"), PaperIndex(data / f"index-{papers}-{users}"))
    if fresh:
        _fill(store, papers, users)
    store.sync_index()
    return store


def _fill(store: PaperStore, papers: int, users: int) -> None:
    rng = random.Random(7)
    start = SLOT - timedelta(days=3)
    batch = []
    for n in range(papers):
        words = rng.sample(TERMS, 2) + rng.sample(FILLER, 8)
        at = start + timedelta(seconds=rng.randrange(3 * 86_400))
        batch.append(
            PaperIn(
                id=f"2606.{n:05d}",
                title=" ".join(words[:6]),
                abstract=" ".join(words),
                source="arxiv",
                published_at=at,
                upvotes=rng.randrange(50),
            )
        )
        if len(batch) == 5_000:
            store.upsert_many(batch, SLOT - timedelta(hours=1))
            batch = []
    if batch:
        store.upsert_many(batch, SLOT - timedelta(hours=1))
    pool = sorted({" ".join(rng.sample(TERMS, rng.choice((1, 2)))) for _ in range(300)})
    topics = [rng.sample(pool, 3) for _ in range(users)]  # user n and channel n: the same
    with Session(store.engine) as session, session.begin():
        for kind in ("@U", "C"):
            for n in range(users):
                key = f"slack:T1:{kind}{n}"
                session.add(
                    Channel(
                        key=key,
                        schedule="daily",
                        digest_time="08:00",
                        quiet=True,
                        last_digest_at=SLOT - timedelta(days=1),
                        created_at=SLOT - timedelta(days=2),
                    )
                )
                for query in topics[n]:
                    session.add(
                        Subscription(
                            channel_key=key,
                            query=query,
                            normalized=query,
                            created_at=SLOT - timedelta(days=2),
                        )
                    )


def due_only(store: PaperStore, kind: str) -> None:
    """Reset the ledger; make only the rows of `kind` ("@U" users, "C" channels) due."""
    with Session(store.engine) as session, session.begin():
        session.execute(delete(Delivery))
        session.execute(delete(DigestRun))
        session.execute(
            update(Channel).values(next_digest_at=SLOT + timedelta(days=30)),
        )
        session.execute(
            update(Channel)
            .where(col(Channel.key).startswith(f"slack:T1:{kind}"))
            .values(next_digest_at=SLOT, last_digest_at=SLOT - timedelta(days=1))
        )


def timed(store: PaperStore, kind: str) -> tuple[float, int]:
    due_only(store, kind)
    ledger = Ledger(store.engine)
    started = time.perf_counter()
    due = open_due(store, ledger, NOW)
    return time.perf_counter() - started, sum(len(p.paper_ids) for p in due.posts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "out" / "watches")
    args = parser.parse_args()
    print(f"{platform.platform()} · Python {platform.python_version()} · SQLite")
    store = build(args.data, args.papers, args.users)
    times: dict[str, list[float]] = {"@U": [], "C": []}
    claimed: dict[str, int] = {}
    timed(store, "@U")  # warm the index and the caches once
    for _ in range(args.runs):
        for kind in ("@U", "C"):
            seconds, claimed[kind] = timed(store, kind)
            times[kind].append(seconds)
    keys = [f"slack:T1:@U{n}" for n in range(args.users)]
    floors = []
    for _ in range(args.runs):
        started = time.perf_counter()
        first_watched(store, keys)
        floors.append(time.perf_counter() - started)
    users, channels = statistics.median(times["@U"]), statistics.median(times["C"])
    print(f"{args.users:,} due rows x 3 topics, {args.papers:,} papers, {args.runs} runs each")
    print(f"watches (user DMs)   median {users:.3f} s   papers claimed {claimed['@U']:,}")
    print(f"baseline (channels)  median {channels:.3f} s   papers claimed {claimed['C']:,}")
    print(f"ratio watches / channels: {users / channels:.2f}")
    print(
        f"of which first_watched (the no-backlog floors): median {statistics.median(floors):.3f} s"
    )
    store.close()


if __name__ == "__main__":
    main()
