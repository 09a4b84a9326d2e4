"""Follow-up scan benchmark: what one digest tick spends finding and queueing follow-ups.

The ledger of a big install: 10,000 channels, each sent 10 papers a day for 30 days (3M
Delivery rows; every day's 300 new papers shared among the channels, so one paper was posted
in ~330 channels), and a realistic batch of 500 paper events (code, versions, venues, upvote
and star changes, some of which cross no threshold).

What is timed is `bot.followups.scan(store, ledger, now)`, the production path: read the
events past the cursor, find the posts of those papers in the last 30 days (one indexed query
per 1,000 papers), leave out what was told before, and queue the replies in the transaction
that moves the cursor. Between runs the queued rows and the cursor are reset. Nothing is
posted (a platform post is a network call, paced per channel, the same with any scan).

Same-run baseline: "per event": the same candidate posts found with one query per event
(the straightforward loop), without the queueing; next to it our batched lookup alone.

Usage:
    .venv/bin/python bench/followups.py [--channels 10000] [--days 30] [--runs 5]
        [--workdir DIR --keep] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, text
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import followups  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.followup_ledger import FollowUpLedger, recent_posts  # noqa: E402
from bot.followup_news import FOLLOW_DAYS, news  # noqa: E402
from bot.models import Channel, Delivery, FollowUp, PaperEvent, ReaderCursor  # noqa: E402
from bot.paper_events import EventCursor  # noqa: E402
from bot.store import PaperStore  # noqa: E402

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
PAPERS_A_DAY = 300
PER_CHANNEL_A_DAY = 10
EVENTS = 500


def paper_id(day: int, n: int) -> str:
    return f"2606.{day:02d}{n:03d}"


def build(engine: Engine, channels: int, days: int, seed: int = 7) -> None:
    """Channels, their deliveries (one post a day each) and nothing else: the scan reads
    only the ledger, the channels and the events."""
    rng = random.Random(seed)
    with Session(engine) as session, session.begin():
        session.execute(
            Channel.__table__.insert(),  # type: ignore[attr-defined]
            [{"key": f"slack:T1:C{c:05d}", "created_at": NOW} for c in range(channels)],
        )
    table = Delivery.__table__  # type: ignore[attr-defined]
    for c in range(channels):
        rows = []
        for day in range(days):
            sent = NOW - timedelta(days=day, hours=3)
            ref = f"C{c:05d}:{sent.timestamp():.6f}"
            for n in rng.sample(range(PAPERS_A_DAY), PER_CHANNEL_A_DAY):
                rows.append(
                    {
                        "channel_key": f"slack:T1:C{c:05d}",
                        "paper_id": paper_id(day, n),
                        "status": "sent",
                        "message_ref": ref,
                        "attempts": 1,
                        "claimed_at": sent,
                        "sent_at": sent,
                    }
                )
        with Session(engine) as session, session.begin():
            session.execute(table.insert(), rows)
        if c % 1000 == 999:
            print(f"  {c + 1:,} channels built", flush=True)


def add_events(engine: Engine, days: int, seed: int = 11) -> None:
    """500 events of the last hour about papers of the last `days` days, mixed kinds."""
    rng = random.Random(seed)
    kinds = ["code"] * 2 + ["version"] * 2 + ["venue"] + ["upvotes"] * 4 + ["stars"]
    rows = []
    for i in range(EVENTS):
        kind = rng.choice(kinds)
        old, new = {
            "code": (None, "https://github.com/acme/x"),
            "version": ("1", "2"),
            "venue": (None, "NeurIPS 2026"),
            "upvotes": (str(rng.randint(30, 60)), str(rng.randint(45, 130))),
            "stars": (str(rng.randint(50, 120)), str(rng.randint(90, 140))),
        }[kind]
        pid = paper_id(rng.randrange(days), rng.randrange(PAPERS_A_DAY))
        at = NOW - timedelta(minutes=60 - i / 10)
        rows.append({"paper_id": pid, "kind": kind, "old": old, "new": new, "at": at, "mark": 0})
    with Session(engine) as session, session.begin():
        session.execute(delete(PaperEvent))
        session.execute(PaperEvent.__table__.insert(), rows)  # type: ignore[attr-defined]


def reset(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.execute(delete(FollowUp))
        session.execute(delete(ReaderCursor))


def timed(work: Callable[[], Any], runs: int, before: Callable[[], None]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        before()
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def per_event(store: PaperStore) -> int:
    """Baseline: one candidate query per news event; distinct (channel, paper) posts."""
    page = store.events_since(EventCursor(), EVENTS + 1)
    found: set[tuple[str, str]] = set()
    for item in news(page.events, NOW):
        posts = recent_posts(store.engine, [item.paper_id], NOW - FOLLOW_DAYS)
        found.update((key, pid) for key, pid, _, _ in posts)
    return len(found)


def batched(store: PaperStore) -> int:
    page = store.events_since(EventCursor(), EVENTS + 1)
    items = news(page.events, NOW)
    posts = recent_posts(store.engine, [i.paper_id for i in items], NOW - FOLLOW_DAYS)
    return len({(key, pid) for key, pid, _, _ in posts})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/followups"))
    parser.add_argument("--keep", action="store_true", help="reuse the store next time")
    parser.add_argument("--url", help="a database URL (default: SQLite in --workdir)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / f"ledger_{args.channels}x{args.days}.db"
    url = args.url or f"sqlite:///{db}"
    fresh = args.url is None and not db.exists()
    engine = make_engine(url)
    with Session(engine) as session:
        have = session.execute(select(func.count()).select_from(Delivery)).scalar_one()
    if fresh or not have:
        print(f"building {args.channels:,} channels x {args.days} days ...", flush=True)
        started = time.perf_counter()
        build(engine, args.channels, args.days)
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    add_events(engine, args.days)
    store = PaperStore(engine)
    ledger = FollowUpLedger(engine)
    with Session(engine) as session:
        deliveries = session.execute(select(func.count()).select_from(Delivery)).scalar_one()
        print(f"{platform.platform()}, {os.cpu_count()} cores, {engine.dialect.name}")
        print(f"ledger: {deliveries:,} deliveries; {EVENTS} events", flush=True)
        session.execute(text("SELECT 1"))
    longest = [0.0]
    advance = ledger.advance

    def timed_advance(*args: Any) -> int | None:
        started = time.perf_counter()
        try:
            return advance(*args)
        finally:
            longest[0] = max(longest[0], time.perf_counter() - started)

    ledger.advance = timed_advance  # type: ignore[method-assign]
    scan_s, queued = timed(
        lambda: followups.scan(store, ledger, NOW), args.runs, lambda: reset(engine)
    )
    write_s = longest[0]
    again_s, _ = timed(lambda: followups.scan(store, ledger, NOW), args.runs, lambda: None)
    batch_s, found = timed(lambda: batched(store), args.runs, lambda: None)
    naive_s, naive_found = timed(lambda: per_event(store), args.runs, lambda: None)
    assert found == naive_found, (found, naive_found)
    print(f"scan (find + queue {queued:,} replies + move the cursor): {scan_s * 1000:.0f} ms")
    print(f"  its longest write transaction (cursor + queued rows):  {write_s * 1000:.0f} ms")
    print(f"scan when caught up (the usual tick):                   {again_s * 1000:.1f} ms")
    print(f"candidate posts, batched ({found:,}):                    {batch_s * 1000:.0f} ms")
    print(f"baseline: candidate posts, one query per event:         {naive_s * 1000:.0f} ms")
    print(f"batched vs per event: {naive_s / batch_s:.1f}x  (median of {args.runs} runs)")
    if not args.keep and args.url is None:
        engine.dispose()
        db.unlink()


if __name__ == "__main__":
    main()
