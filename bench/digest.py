"""Digest benchmark: every due channel's digest selected, ranked and claimed in one tick.

Budget (issue 4): 10,000 channels x 3 topics (topics repeat across channels) over a 1M-paper
store with 2,000 new papers, <= 10 s on SQLite and on PostgreSQL on this machine. Since issue 14
half of the topic pool carries one of the filters has:code, stars:>=N, org:, kw:, venue: (the
papers have code links, stars, organisations, HF keywords and venues to match), and selection
applies the relevance floor (`bot.digest_floor`): the first tick of a process also looks up
each topic's best score over the store (`bot.index_window.best_ever`, remembered for 6 h), so
the runs are printed in order, the first one cold.

What is timed is `bot.delivery_open.open_due(store, ledger, now)`, the production path of a digest
tick before any post: due channels and their topics, the ledger's delivered sets, selection
(each DISTINCT topic searched once in a small in-memory index of the new papers, then fanned out
to the channels), and the one transaction that inserts the DigestRuns and claims the papers
(INSERT ... ON CONFLICT DO NOTHING RETURNING, executemany). Between runs the ledger is reset.

Same-run baselines, both extrapolated from a sample of channels:
- "naive": every channel's every topic searched in the FULL store's tantivy index (limit 1,000),
  then filtered to papers first seen in the window (what a straightforward implementation of
  `search_papers` per subscription does);
- "no sharing": every channel's every topic searched separately over the new papers (the same
  small index, without evaluating each distinct topic once).

Usage:
    .venv/bin/python bench/digest.py --papers 100000          # quick
    .venv/bin/python bench/digest.py                          # 1M papers, SQLite and PostgreSQL
    .venv/bin/python bench/digest.py --db sqlite --papers 1000000
The store is generated once into bench/out/ (SQLite) or a `paperboy_bench_<n>` database on
$PAPERBOY_TEST_PG_URL's server and reused by later runs with the same --papers.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, func, select, text, update
from sqlmodel import Session, col

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import digest, search  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.delivery_open import due_channels, open_due, topics_of  # noqa: E402
from bot.index import PaperIndex  # noqa: E402
from bot.ledger import Ledger, RunRequest  # noqa: E402
from bot.models import Channel, Delivery, DigestRun, Paper, Subscription  # noqa: E402
from bot.store import PaperStore  # noqa: E402
from bot.times import aware  # noqa: E402

OUT = ROOT / "bench" / "out"
PG_URL = os.environ.get("PAPERBOY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SLOT = datetime(2026, 6, 17, 9, 0, tzinfo=UTC)
NOW = SLOT + timedelta(seconds=20)
MAX_NEW = 4_000  # new papers in the store; a run's window takes the newest k of them
TOPIC_TERMS = 400  # distinct subject words ("t0042"); topics are 1-2 of them
TOPIC_POOL = 300  # distinct topics channels choose from (Zipf: some are very popular)
FILLER = [f"w{i:04d}" for i in range(5_000)]
TERMS = [f"t{i:04d}" for i in range(TOPIC_TERMS)]
ORGS = [f"Lab {i:02d}" for i in range(40)]  # HF organisations ("org:lab07")
VENUES = ["NeurIPS", "ICML", "ICLR", "ACL", "EMNLP", "CVPR"]
FILTERED = 0.5  # share of the topic pool that carries an issue-14 filter


# ------------------------------------------------------------------------- data


def zipf_choice(rng: random.Random, items: list[str], s: float = 1.1) -> str:
    weights = _weights(len(items), s)
    return rng.choices(items, cum_weights=weights, k=1)[0]


_W: dict[tuple[int, float], list[float]] = {}


def _weights(n: int, s: float) -> list[float]:
    key = (n, s)
    if key not in _W:
        total, cum = 0.0, []
        for i in range(1, n + 1):
            total += 1.0 / i**s
            cum.append(total)
        _W[key] = cum
    return _W[key]


def paper_rows(n_old: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """n_old papers first seen long ago, then MAX_NEW first seen one by one before SLOT."""
    rng = random.Random(seed)
    old_time = SLOT - timedelta(days=400)
    for i in range(n_old + MAX_NEW):
        new = i >= n_old
        seen = SLOT - timedelta(seconds=(n_old + MAX_NEW - i) * 10) if new else old_time
        terms = [zipf_choice(rng, TERMS) for _ in range(rng.randint(1, 3))]
        title = " ".join(rng.sample(FILLER, 4) + terms[:2])
        abstract = " ".join(rng.sample(FILLER, 20) + terms)
        yield _facts(rng) | {
            "id": f"{1000 + i // 100_000:04d}.{i % 100_000:05d}",
            "version": 1,
            "title": title,
            "abstract": abstract,
            "authors": ["A. Author"],
            "categories": ["cs.LG"],
            "published_at": seen,
            "hf_daily_date": None,
            "upvotes": rng.randint(0, 60) if rng.random() < 0.3 else 0,
            "comments": 0,
            "sources": ["bench"],
            "first_seen_at": seen,
            "updated_at": seen,
            "announced_at": seen,
        }


def _facts(rng: random.Random) -> dict[str, Any]:
    """What the issue-14 filters read: a code link (30%) with stars, an HF organisation (20%),
    HF keywords (40%), a venue in the arXiv comment (10%)."""
    code = rng.random() < 0.3
    venue = rng.choice(VENUES) if rng.random() < 0.1 else None
    return {
        "github_repo": f"https://github.com/x/r{rng.randint(0, 10**6)}" if code else None,
        "github_stars": int(rng.paretovariate(1.2) * 5) if code else None,
        "organization": rng.choice(ORGS) if rng.random() < 0.2 else None,
        "ai_keywords": [zipf_choice(rng, TERMS) for _ in range(rng.randint(2, 4))]
        if rng.random() < 0.4
        else [],
        "arxiv_comment": f"Accepted at {venue} 2026" if venue else None,
    }


def _filter(rng: random.Random) -> str:
    """One issue-14 filter: has:code, stars:>=N, org:, kw:, venue:."""
    kind = rng.randrange(5)
    if kind == 0:
        return "has:code"
    if kind == 1:
        return f"stars:>={rng.choice((10, 50, 100))}"
    if kind == 2:
        return f"org:{rng.choice(ORGS).replace(' ', '').lower()}"
    if kind == 3:
        return f"kw:{zipf_choice(rng, TERMS, 0.8)}"
    return f"venue:{rng.choice(VENUES).lower()}"


def topic_pool(seed: int = 11) -> list[str]:
    """TOPIC_POOL topics of 1-2 subject words; every other one carries a filter (FILTERED)."""
    rng = random.Random(seed)
    pool: list[str] = []
    while len(pool) < TOPIC_POOL:
        words = [zipf_choice(rng, TERMS, 0.8) for _ in range(rng.choice((1, 1, 2)))]
        if len(pool) % round(1 / FILTERED) == 0:
            words.append(_filter(rng))
        topic = " ".join(dict.fromkeys(words))
        if topic not in pool:
            pool.append(topic)
    return pool


def build_store(url: str, n_old: int, channels: int) -> Engine:
    engine = make_engine(url)
    with Session(engine) as session:
        have = session.execute(select(func.count()).select_from(Paper)).scalar_one()
        chans = session.execute(select(func.count()).select_from(Channel)).scalar_one()
    if have == n_old + MAX_NEW and chans == channels:
        print(f"  reusing {have:,} papers and {chans:,} channels")
        return engine
    t0 = time.perf_counter()
    table = Paper.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for t in ("delivery", "digest_run", "subscription", "channel", "paper"):
            conn.execute(text(f"DELETE FROM {t}"))
    batch: list[dict[str, Any]] = []
    done = 0
    for row in paper_rows(n_old):
        batch.append(row)
        if len(batch) == 20_000:
            with engine.begin() as conn:
                conn.execute(table.insert(), batch)
            done += len(batch)
            batch = []
            if done % 200_000 == 0:
                print(f"  {done:,} papers ({time.perf_counter() - t0:.0f} s)", flush=True)
    if batch:
        with engine.begin() as conn:
            conn.execute(table.insert(), batch)
    rng = random.Random(3)
    pool = topic_pool()
    chan_rows, sub_rows = [], []
    for c in range(channels):
        key = f"slack:T{c % 50:03d}:C{c:06d}"
        chan_rows.append(
            {
                "key": key,
                "schedule": "daily",
                "digest_time": "09:00",
                "timezone": "UTC",
                "max_papers": 10,
                "min_upvotes": 0,
                "quiet": False,
                "created_at": SLOT,
            }
        )
        topics: set[str] = set()
        while len(topics) < 3:
            topics.add(zipf_choice(rng, pool, 1.0))
        for topic in sorted(topics):
            sub_rows.append(
                {
                    "channel_key": key,
                    "query": topic,
                    "normalized": topic,
                    "created_at": SLOT - timedelta(days=30),
                }
            )
    with engine.begin() as conn:
        conn.execute(Channel.__table__.insert(), chan_rows)  # type: ignore[attr-defined]
        conn.execute(Subscription.__table__.insert(), sub_rows)  # type: ignore[attr-defined]
    print(
        f"  built {n_old + MAX_NEW:,} papers, {channels:,} channels in "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return engine


def new_cutoff(engine: Engine, k: int) -> datetime:
    """The first_seen_at from which exactly the newest k papers are new."""
    with Session(engine) as session:
        value: datetime = session.execute(
            select(col(Paper.first_seen_at))
            .order_by(col(Paper.first_seen_at).desc())
            .offset(k - 1)
            .limit(1)
        ).scalar_one()
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def reset(engine: Engine, since: datetime, due: int) -> None:
    """Clear the ledger; the first `due` channels are due at SLOT, the rest next year."""
    keys_due = [f"slack:T{c % 50:03d}:C{c:06d}" for c in range(due)]
    with engine.begin() as conn:
        conn.execute(delete(Delivery))
        conn.execute(delete(DigestRun))
        conn.execute(
            update(Channel).values(last_digest_at=since, next_digest_at=SLOT + timedelta(days=365))
        )
        for i in range(0, len(keys_due), 5_000):
            conn.execute(
                update(Channel)
                .where(Channel.key.in_(keys_due[i : i + 5_000]))  # type: ignore[attr-defined]
                .values(next_digest_at=SLOT)
            )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE delivery, digest_run, channel"))


# ------------------------------------------------------------------------ timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def one_tick(
    engine: Engine, store: PaperStore, since: datetime, due: int, repeat: int
) -> tuple[list[float], int, int]:
    times: list[float] = []
    claimed = digests = 0
    for _ in range(repeat):
        reset(engine, since, due)
        ledger = Ledger(engine, "bench")
        seconds, (outgoing, _skipped) = timed(partial(open_due, store, ledger, NOW))
        times.append(seconds)
        digests = len(outgoing)
        claimed = sum(len(o.paper_ids) for o in outgoing)
    return times, digests, claimed


def phases(engine: Engine, store: PaperStore, since: datetime, due: int) -> dict[str, float]:
    """open_due's steps one by one (same calls), to show where the time goes."""
    reset(engine, since, due)
    ledger = Ledger(engine, "bench")
    out: dict[str, float] = {}
    out["due channels + topics"], (chans, subs) = timed(
        lambda: (lambda c: (c, topics_of(store, [x.key for x in c])))(due_channels(store, NOW))
    )
    plans = [digest.plan_for(c, subs[c.key], SLOT) for c in chans]
    out["delivered sets"], delivered = timed(
        lambda: ledger.delivered([p.channel_key for p in plans])
    )
    out["select + rank"], selections = timed(
        lambda: digest.select_many(store, plans, NOW, delivered)
    )
    runs = [RunRequest(p.channel_key, SLOT, selections[p.channel_key].paper_ids) for p in plans]
    out["runs + claims (1 txn)"], _ = timed(
        lambda: ledger.open_runs(
            runs, NOW, advance={p.channel_key: SLOT + timedelta(days=1) for p in plans}
        )
    )
    return out


def baseline_no_sharing(store: PaperStore, plans: list[digest.Plan], sample: int) -> float:
    """Seconds per channel: its topics searched one by one over the new papers."""
    with Session(store.engine) as session:
        fresh = list(
            session.scalars(
                select(Paper).where(col(Paper.announced_at) >= min(p.since for p in plans))
            ).all()
        )
    index = PaperIndex(None)
    index.upsert(fresh)
    aliases = store.aliases()
    t0 = time.perf_counter()
    for plan in plans[:sample]:
        for topic in plan.topics:
            index.search(search.parse_query(topic, NOW), aliases, len(fresh), NOW)
    return (time.perf_counter() - t0) / sample


def baseline_naive(
    store: PaperStore, full: PaperIndex, plans: list[digest.Plan], sample: int
) -> float:
    """Seconds per channel: each topic searched in the whole store, filtered to the window."""
    aliases = store.aliases()
    t0 = time.perf_counter()
    for plan in plans[:sample]:
        for topic in plan.topics:
            hits = full.search(search.parse_query(topic, NOW), aliases, 1_000, NOW)
            papers = store.get_many([pid for pid, _ in hits])
            [p for p in papers if aware(p.announced_at) >= plan.since]  # type: ignore[operator]
    return (time.perf_counter() - t0) / sample


def full_index(engine: Engine, path: Path, total: int) -> PaperIndex:
    index = PaperIndex(path)
    if index.doc_count() == total:
        return index
    print(f"  building the full-store index at {path} (once) ...", flush=True)
    t0 = time.perf_counter()
    index.clear()
    store = PaperStore(engine, index)
    store.sync_index()
    index.optimize()
    print(f"  indexed {index.doc_count():,} papers in {time.perf_counter() - t0:.0f} s")
    return index


# --------------------------------------------------------------------------- main


def run_db(name: str, url: str, args: argparse.Namespace) -> None:
    print(
        f"\n== {name}: {args.papers:,} old + {MAX_NEW:,} recent papers, "
        f"{args.channels:,} channels x 3 topics ==",
        flush=True,
    )
    engine = build_store(url, args.papers, args.channels)
    # Digests ask the store's own search index (per topic, for the window's announcements).
    full = full_index(
        engine, args.out / f"index-{name.lower()}-{args.papers}", args.papers + MAX_NEW
    )
    store = PaperStore(engine, full)
    since = new_cutoff(engine, args.new)

    times, digests, claimed = one_tick(engine, store, since, args.channels, args.repeat)
    med = statistics.median(times)
    verdict = "within" if med <= 10 else "OVER"
    filtered = sum(":" in t for t in _subscribed(store))
    print(
        f"  topics with an issue-14 filter: {filtered:,} of {3 * args.channels:,} subscriptions; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("  runs in order (the first cold): " + ", ".join(f"{t:.2f} s" for t in times))
    print(
        f"tick (select + rank + claim), {args.channels:,} channels, {args.new:,} new papers: "
        f"median {med:.2f} s of {len(times)} runs (min {min(times):.2f}, max {max(times):.2f})"
        f" -> {verdict} the 10 s budget"
    )
    print(
        f"  {digests:,} digests, {claimed:,} papers claimed; "
        f"per channel {med / args.channels * 1e3:.3f} ms"
    )
    steps = phases(engine, store, since, args.channels)
    for phase, seconds in steps.items():
        print(f"    {phase:<24} {seconds:7.3f} s")

    print("growth with channels (new papers fixed):")
    for due in sorted({max(args.channels // 10, 1), args.channels // 3, args.channels}):
        ts, _, _ = one_tick(engine, store, since, due, 1)
        print(f"  {due:>7,} channels: {ts[0]:6.2f} s, {ts[0] / due * 1e3:.3f} ms per channel")
    print("growth with new papers (all channels due):")
    for k in (500, 1_000, 2_000, 4_000):
        ts, _, claimed_k = one_tick(engine, store, new_cutoff(engine, k), args.channels, 1)
        print(
            f"  {k:>7,} new papers: {ts[0]:6.2f} s, "
            f"{ts[0] / args.channels * 1e3:.3f} ms per channel, {claimed_k:,} claimed"
        )

    channels = due_channels_all(store, since)
    per_select = steps["select + rank"] / args.channels
    per_no_share = baseline_no_sharing(store, channels, min(args.sample * 5, len(channels)))
    print("selection per channel, same run (baselines sampled, extrapolated to all channels):")
    print(
        f"  distinct topics, shared     {per_select * 1e3:8.3f} ms  "
        f"({per_select * args.channels:7.1f} s; search, rank, fan-out)"
    )
    print(
        f"  no topic sharing            {per_no_share * 1e3:8.3f} ms  "
        f"({per_no_share * args.channels:7.1f} s; searches alone)  "
        f"x{per_no_share / per_select:.1f}"
    )
    if not args.no_naive:
        per_naive = baseline_naive(store, full, channels, min(args.sample, len(channels)))
        print(
            f"  naive full-store search     {per_naive * 1e3:8.3f} ms  "
            f"({per_naive * args.channels:7.1f} s; searches + rows alone)  "
            f"x{per_naive / per_select:.1f}"
        )
    full.close()
    engine.dispose()


def _subscribed(store: PaperStore) -> list[str]:
    with Session(store.engine) as session:
        return list(session.scalars(select(col(Subscription.query))).all())


def due_channels_all(store: PaperStore, since: datetime) -> list[digest.Plan]:
    with Session(store.engine) as session:
        chans = list(session.scalars(select(Channel)).all())
    topics = topics_of(store, [c.key for c in chans])
    return [digest.Plan(c.key, tuple(topics[c.key]), since) for c in chans]


def pg_bench_url(n: int) -> str:
    name = f"paperboy_bench_{n}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, default=1_000_000, help="old papers in the store")
    parser.add_argument("--new", type=int, default=2_000, help="new papers in the window")
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=100, help="channels for the naive baseline")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--no-naive", action="store_true", help="skip the full-store baseline")
    parser.add_argument("--out", type=Path, default=OUT, help="where the store and index live")
    args = parser.parse_args()
    if args.new > MAX_NEW:
        parser.error(f"--new is at most {MAX_NEW}")
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    if args.db in ("sqlite", "both"):
        run_db("SQLite", f"sqlite:///{args.out / f'digest-{args.papers}.db'}", args)
    if args.db in ("postgresql", "both"):
        run_db("PostgreSQL", pg_bench_url(args.papers), args)


if __name__ == "__main__":
    main()
