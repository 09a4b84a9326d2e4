"""Search benchmark: the whole `/papers <query>` path over a synthetic corpus, with baselines.

For each corpus size (default 10k, 100k, 1M papers) it builds a SQLite store plus tantivy index
through `PaperStore.upsert_many` (the ingest path), then runs a fixed 20-query mix through what
`/papers` does: parse -> index -> rows from the store -> PaperCards -> Reply. It prints
p50/p95/p99, the build rate, disk size and RSS, and in the same run the baselines: SQLite FTS5
with bm25 over the same papers (every size) and `rank_bm25` in memory (100k only).

The corpus has realistic term statistics: a Zipf-distributed vocabulary of ML terms plus a
long tail, titles, abstracts with mined-style acronyms ("Direct Preference Optimization (DPO)"),
authors from a large name pool, arXiv categories, dates over ten years and heavy-tailed upvotes.

    .venv/bin/python bench/search.py                    # 10k, 100k, 1M (several minutes)
    .venv/bin/python bench/search.py --sizes 10k,100k   # quick
    .venv/bin/python bench/search.py --sizes 1m --workdir DIR --keep --no-cache --rounds 5
        # builds the 1M store once in DIR and reuses it (only the index is rebuilt when its
        # schema changed); --no-cache: every search computed afresh; --rounds: the mix five
        # times, and the median of the five rounds' figures
FTS5 runs query by query between paperboy's runs, so a ratio compares the two under the same
load (the machine this was written on is shared, and drifts).
Not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.index import open_index  # noqa: E402
from bot.messages import ChannelRef, Invocation, Reply, ReplyKind, UserRef  # noqa: E402
from bot.models import PaperIn  # noqa: E402
from bot.service import BotService  # noqa: E402
from bot.store import PaperStore  # noqa: E402

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LIMIT = 5  # results shown, as `[search] results` defaults to
REPEAT = 5  # runs of each query after one warm-up

# Function words first (in real abstracts they take the top Zipf ranks), then common ML words
# (`model` lands near rank 20, about 1% of tokens as in arXiv abstracts), then a long tail.
STOP = """
the of and a to in we is for that on with this as by are our an be from which it at can
these their such both than its has not or have
"""
HEAD = """
model models language learning large data training neural network method results performance
task tasks based approach propose paper show using learning deep text generation image
reasoning benchmark evaluation dataset datasets reinforcement policy agents agent alignment
preference human feedback reward optimization fine-tuning tuning instruction prompt prompts
transformer attention vision multimodal diffusion video retrieval augmented knowledge graph
inference efficient scaling parameters tokens token context long memory speech audio code
robot robotics planning search safety robustness adversarial privacy federated distillation
compression quantization sparse mixture experts pretraining pre-trained representation
contrastive self-supervised supervised unsupervised semi-supervised zero-shot few-shot
in-context chain thought mathematical math question answering summarization translation
multilingual low-resource embedding embeddings classification detection segmentation
tracking 3d point cloud rendering nerf gaussian splatting editing synthesis control
controllable evaluation metrics hallucination factuality bias fairness interpretability
explainability mechanistic circuits features probing steering editing unlearning watermark
jailbreak red-teaming toxicity calibration uncertainty bayesian probabilistic causal
graph neural theory convergence generalization bounds kernel gradient descent stochastic
optimizer adam learning-rate schedule curriculum data-efficient synthetic simulation world
environment game games multi-agent cooperative communication emergent tool use api
"""
PHRASES = [
    ("Direct Preference Optimization", "DPO"),
    ("Reinforcement Learning from Human Feedback", "RLHF"),
    ("Proximal Policy Optimization", "PPO"),
    ("Retrieval-Augmented Generation", "RAG"),
    ("Large Language Models", "LLMs"),
    ("Low-Rank Adaptation", "LoRA"),
    ("Chain-of-Thought", "CoT"),
    ("Mixture of Experts", "MoE"),
    ("Vision Language Models", "VLMs"),
    ("Group Relative Policy Optimization", "GRPO"),
]
CATEGORIES = (
    "cs.CL cs.LG cs.AI cs.CV stat.ML cs.RO cs.IR cs.SD eess.AS cs.NE cs.CR cs.HC "
    "cs.SE cs.DC math.OC eess.IV q-bio.NC cs.MA cs.GR physics.comp-ph"
).split()
FIRST = (
    "wei li ming jane john maria anna david sarah michael yuki hiro pierre marie ahmed "
    "fatima carlos lucia ivan olga chen jun xin yan kai ravi priya arjun noah emma liam "
    "olivia lucas mia ethan ava james sofia omar layla"
).split()


@dataclass(frozen=True)
class BenchQuery:
    name: str
    text: str  # what the user types
    fts: str  # the FTS5 MATCH equivalent
    fts_where: str = ""  # extra SQL filter on the metadata table (baseline only)
    fts_order: str = "bm25(fts, 3.0, 2.0, 1.0, 0.6)"


QUERIES = [
    BenchQuery("rare word", "zorvex", "zorvex"),
    BenchQuery("rare pair", "quintar belvoss", "quintar belvoss"),
    BenchQuery("common: model", "model", "model"),
    BenchQuery("common: language", "language", "language"),
    BenchQuery("common pair", "language model", "language model"),
    BenchQuery("mid pair", "reward optimization", "reward optimization"),
    BenchQuery("phrase", '"preference optimization"', '"preference optimization"'),
    BenchQuery("phrase common", '"language models"', '"language models"'),
    BenchQuery("OR", "rlhf OR dpo", "rlhf OR dpo"),
    BenchQuery("OR common", "diffusion OR transformer", "diffusion OR transformer"),
    BenchQuery("acronym dpo", "dpo", 'dpo OR "direct preference optimization"'),
    BenchQuery(
        "acronym rag", "rag retrieval", '(rag OR "retrieval augmented generation") AND retrieval'
    ),
    BenchQuery("exclude", "alignment -reward", "alignment NOT reward"),
    BenchQuery("author", "author:chen", "authors:chen"),
    BenchQuery("author + word", "author:chen reasoning", "authors:chen reasoning"),
    BenchQuery("category", "agents cat:cs.RO", "agents", "m.cats LIKE '%cs.RO%'"),
    BenchQuery("since", "model since:30d", "model", "m.published >= :since30"),
    BenchQuery("upvotes", "reasoning upvotes:>=50", "reasoning", "m.upvotes >= 50"),
    BenchQuery("sort top", "model sort:top", "model", "", "m.upvotes DESC"),
    BenchQuery("sort new", "diffusion video sort:new", "diffusion video", "", "m.published DESC"),
]


# ---------------------------------------------------------------------------- corpus


class Corpus:
    """Deterministic synthetic papers: the same `seed` and `n` give the same papers."""

    def __init__(self, n: int, seed: int = 7) -> None:
        self.n = n
        self.seed = seed
        head = STOP.split() + HEAD.split()
        rng = np.random.default_rng(1234)
        syllables = "ka lo mi re to vu ze xa qu in ar el os ti bel vos zor quin dra fen".split()
        tail = {"".join(rng.choice(syllables, size=int(rng.integers(2, 5)))) for _ in range(60_000)}
        tail -= set(head)
        self.vocab = np.array(head + sorted(tail) + ["zorvex", "quintar", "belvoss"])
        # Zipf over ranks: p(rank r) ~ 1 / r^1.07, the usual shape of word frequencies.
        ranks = np.arange(1, len(self.vocab) + 1, dtype=np.float64)
        weights = 1.0 / ranks**1.07
        self.p = weights / weights.sum()
        last = [
            "".join(rng.choice(syllables, size=int(rng.integers(2, 4)))).capitalize()
            for _ in range(40_000)
        ] + ["Chen", "Wang", "Zhang", "Smith", "Kim", "Garcia", "Müller", "Dubois"]
        self.last = np.array(last)
        self.first = np.array([f.capitalize() for f in FIRST])

    def papers(self) -> Iterator[PaperIn]:
        rng = np.random.default_rng(self.seed)
        start = datetime(2016, 1, 1, tzinfo=UTC)
        span = (NOW - start).total_seconds()
        chunk = 5_000
        for base in range(0, self.n, chunk):
            m = min(chunk, self.n - base)
            title_ids = rng.choice(len(self.vocab), size=(m, 9), p=self.p)
            abs_ids = rng.choice(len(self.vocab), size=(m, 140), p=self.p)
            kw_ids = rng.choice(len(self.vocab), size=(m, 4), p=self.p)
            first = rng.integers(0, len(self.first), size=(m, 6))
            last_ranks = np.minimum(rng.zipf(1.3, size=(m, 6)) - 1, len(self.last) - 1)
            n_auth = rng.integers(1, 7, size=m)
            cats = rng.integers(0, len(CATEGORIES), size=(m, 2))
            when = rng.random(m) ** 0.5  # more papers lately, as on arXiv
            upvotes = np.minimum(rng.pareto(1.2, size=m) * 2, 3000).astype(int)
            phrase = rng.integers(0, len(PHRASES) * 8, size=m)
            rare = rng.random(m)
            for k in range(m):
                i = base + k
                words = self.vocab[abs_ids[k]].tolist()
                title = " ".join(self.vocab[title_ids[k]].tolist()).capitalize()
                p = int(phrase[k])
                keywords = self.vocab[kw_ids[k]].tolist()
                if p < 3 * len(PHRASES) and k % 3 == 0:
                    # As on Hugging Face: a paper about DPO often says so in its title
                    # ("Mitigating Hallucinations ... via DPO") and in its AI keywords.
                    title += f" via {PHRASES[p % len(PHRASES)][1]}"
                    keywords.append(PHRASES[p % len(PHRASES)][0].lower())
                if p < len(PHRASES):  # an acronym defined the way abstracts do it
                    long, short = PHRASES[p]
                    words[20:20] = [f"{long} ({short})"]
                elif p < 2 * len(PHRASES):  # spelled out only
                    words[40:40] = [PHRASES[p - len(PHRASES)][0].lower()]
                elif p < 3 * len(PHRASES):  # the acronym only
                    words[60:60] = [PHRASES[p - 2 * len(PHRASES)][1]]
                if rare[k] < 0.0005:
                    words.append("zorvex")
                if rare[k] > 0.9995:
                    words += ["quintar", "belvoss"]
                authors = [
                    f"{self.first[first[k, j]]} {self.last[last_ranks[k, j]]}"
                    for j in range(int(n_auth[k]))
                ]
                yield PaperIn(
                    id=f"{16 + i // 100_000:02d}{(i // 10_000) % 10 + 1:02d}.{i % 100_000:05d}",
                    title=title,
                    source="bench",
                    abstract=" ".join(words) + ".",
                    authors=authors,
                    categories=sorted({CATEGORIES[c] for c in cats[k]}),
                    published_at=start + timedelta(seconds=float(when[k]) * span),
                    upvotes=int(upvotes[k]),
                    ai_keywords=keywords,
                )


# ------------------------------------------------------------------------ measuring


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    q = np.percentile(np.array(samples_ms), [50, 95, 99])
    return float(q[0]), float(q[1]), float(q[2])


def timed(
    fn: Callable[[], object], repeat: int = REPEAT, cpu: list[float] | None = None
) -> list[float]:
    """Wall-clock ms per run; `cpu` collects this process's CPU ms per run, a figure that
    other load on a shared machine inflates much less than wall time."""
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c0) * 1000)
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def disk_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


_LOOP = asyncio.new_event_loop()
_SETTINGS = Settings.load(None, {})


def whole_path(store: PaperStore, text: str) -> Reply:
    """What `/papers <text>` does: BotService.handle (parse, index, rows, cards, Reply)."""
    service = BotService(_SETTINGS, store, clock=lambda: NOW)
    inv = Invocation(text, ChannelRef("bench", "w", "c"), UserRef("bench", "u"))
    return _LOOP.run_until_complete(service.ask(inv))


# ------------------------------------------------------------------------- baselines


def build_fts(corpus: Corpus, path: Path) -> tuple[sqlite3.Connection, float]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(title, keywords, abstract, authors, "
        "tokenize='porter unicode61')"
    )
    db.execute(
        "CREATE TABLE m (rowid INTEGER PRIMARY KEY, id TEXT, cats TEXT, published REAL, "
        "upvotes INTEGER)"
    )
    t0 = time.perf_counter()
    rows, meta = [], []
    for i, p in enumerate(corpus.papers()):
        rows.append((i, p.title, " ".join(p.ai_keywords), p.abstract, " ".join(p.authors)))
        assert p.published_at is not None
        meta.append((i, p.id, " ".join(p.categories), p.published_at.timestamp(), p.upvotes))
        if len(rows) >= 10_000:
            db.executemany(
                "INSERT INTO fts(rowid, title, keywords, abstract, authors) VALUES (?,?,?,?,?)",
                rows,
            )
            db.executemany("INSERT INTO m VALUES (?,?,?,?,?)", meta)
            rows, meta = [], []
    if rows:
        db.executemany(
            "INSERT INTO fts(rowid, title, keywords, abstract, authors) VALUES (?,?,?,?,?)", rows
        )
        db.executemany("INSERT INTO m VALUES (?,?,?,?,?)", meta)
    db.commit()
    return db, time.perf_counter() - t0


def fts_query(db: sqlite3.Connection, q: BenchQuery) -> list[tuple[object, ...]]:
    where = f"AND {q.fts_where}" if q.fts_where else ""
    sql = (
        "SELECT m.id, m.upvotes FROM fts JOIN m ON m.rowid = fts.rowid "
        f"WHERE fts MATCH :q {where} ORDER BY {q.fts_order} LIMIT :limit"
    )
    since30 = (NOW - timedelta(days=30)).timestamp()
    return db.execute(sql, {"q": q.fts, "limit": LIMIT + 1, "since30": since30}).fetchall()


def rank_bm25_baseline(corpus: Corpus) -> tuple[list[float], float]:
    """What simple bots do: rank_bm25 over title+abstract in memory, scoring every paper."""
    import re

    from rank_bm25 import BM25Okapi

    token = re.compile(r"\w+")
    t0 = time.perf_counter()
    docs = [token.findall(f"{p.title} {p.abstract}".lower()) for p in corpus.papers()]
    bm25 = BM25Okapi(docs)
    build = time.perf_counter() - t0
    samples: list[float] = []
    for q in QUERIES:
        words = token.findall(q.fts.lower().replace(" or ", " ").replace("authors:", ""))

        def run(words: list[str] = words) -> object:
            scores = bm25.get_scores(words)
            return np.argpartition(-scores, LIMIT)[:LIMIT]

        samples += timed(run, repeat=2)
    return samples, build


# ------------------------------------------------------------------------------ main


def run_size(
    n: int,
    workdir: Path,
    with_baselines: bool,
    rank_bm25: bool,
    cache: bool = True,
    rounds: int = 1,
) -> None:
    print(f"\n=== {n:,} papers ({'result cache on' if cache else 'no result cache'}) ===")
    corpus = Corpus(n)
    db_path = workdir / f"store-{n}.db"
    index_path = workdir / f"index-{n}"
    reuse = db_path.exists() and (index_path / "meta.json").exists()
    store = PaperStore(make_engine(f"sqlite:///{db_path}"), index=open_index(index_path))
    assert store.index is not None
    if reuse and store.count() == n and store.index.doc_count() == n:
        print(f"reusing the store and index built earlier in {workdir} (no build figures)")
    elif db_path.exists() and store.count() == n:
        # The index is of another schema version (or gone): rebuild it from the store.
        t0 = time.perf_counter()
        store.sync_index(rebuild=True)
        store.index.optimize()
        print(
            f"reusing the store in {workdir}; index rebuilt from it in "
            f"{time.perf_counter() - t0:.0f} s (no build figures)"
        )
    else:
        build_store(store, corpus, n)
    print(
        f"disk: store {disk_mb(db_path):,.0f} MB, index {disk_mb(index_path):,.0f} MB; "
        f"index docs {store.index.doc_count():,}; RSS now {rss_mb():,.0f} MB",
        flush=True,
    )
    if not cache:
        store.index.result_cache = 0
        store.index.compiled_cache = 0
    gc.collect()
    measure(store, n, workdir, corpus, with_baselines, rank_bm25, rounds)
    store.index.close()
    store.engine.dispose()


def build_store(store: PaperStore, corpus: Corpus, n: int) -> None:
    assert store.index is not None
    # Generating papers is not ingest: make them in chunks untimed, time only the store+index.
    build = build_cpu = 0.0
    added = 0
    papers = corpus.papers()
    while True:
        # Big calls, as `paperboy import` streams a snapshot through one upsert_many.
        chunk = list(itertools.islice(papers, 100_000))
        if not chunk:
            break
        t0, c0 = time.perf_counter(), time.process_time()
        added += len(store.upsert_many(chunk, NOW).added)
        build += time.perf_counter() - t0
        build_cpu += time.process_time() - c0
    t1 = time.perf_counter()
    store.index.optimize()
    merge = time.perf_counter() - t1
    print(
        f"build: {added:,} papers in {build:.1f} s = {n / build:,.0f} papers/s into store+index; "
        f"{build_cpu:.1f} CPU-s over all threads (then {merge:.1f} s waiting for index merges)",
        flush=True,
    )


@dataclass
class Round:
    """One pass of the query mix: paperboy's whole path and FTS5, query by query."""

    path: list[float]  # wall ms, every run of every query
    path_cpu: list[float]
    fts: list[float]
    fts_cpu: list[float]

    def ratios(self) -> tuple[float, float]:
        """FTS5 / paperboy at p50 and p95 (wall)."""
        p50, p95, _ = percentiles(self.path)
        f50, f95, _ = percentiles(self.fts)
        return f50 / p50, f95 / p95


def measure(
    store: PaperStore,
    n: int,
    workdir: Path,
    corpus: Corpus,
    with_baselines: bool,
    rank_bm25: bool,
    rounds: int = 1,
) -> None:
    db: sqlite3.Connection | None = None
    if with_baselines:
        fts_path = workdir / f"fts-{n}.db"
        if fts_path.exists():
            db, fts_build = sqlite3.connect(fts_path), float("nan")
        else:
            db, fts_build = build_fts(corpus, fts_path)
        print(
            f"BASELINE SQLite FTS5 bm25: build {n / fts_build:,.0f} papers/s, "
            f"{disk_mb(fts_path):,.0f} MB"
        )
    done = [one_round(store, db, n, k + 1 if rounds > 1 else 0) for k in range(rounds)]
    p50 = statistics.median(percentiles(r.path)[0] for r in done)
    p95 = statistics.median(percentiles(r.path)[1] for r in done)
    if rounds > 1:
        line = f"OVER {rounds} ROUNDS (median of the rounds): paperboy p50 {p50:.2f} ms  "
        line += f"p95 {p95:.2f} ms"
        if db is not None:
            fifties, nineties = zip(*(r.ratios() for r in done), strict=True)
            line += (
                f";  FTS5 / paperboy p50 {statistics.median(fifties):.1f}x  "
                f"p95 {statistics.median(nineties):.1f}x  (p95 ratio of each round: "
                + ", ".join(f"{x:.0f}x" for x in nineties)
                + ")"
            )
        print(line, flush=True)
    if db is not None:
        db.close()
    if rank_bm25:
        r_samples, r_build = rank_bm25_baseline(corpus)
        r50, r95, r99 = percentiles(r_samples)
        print(
            f"BASELINE rank_bm25 in memory (build {r_build:.1f} s): p50 {r50:.1f} ms  "
            f"p95 {r95:.1f} ms  p99 {r99:.1f} ms; ratio p50 {r50 / p50:.0f}x  "
            f"p95 {r95 / p95:.0f}x  (RSS now {rss_mb():,.0f} MB)",
            flush=True,
        )


def one_round(store: PaperStore, db: sqlite3.Connection | None, n: int, number: int) -> Round:
    """The query mix once. For each query, paperboy's runs and then FTS5's: both are timed
    under the same load (a shared machine drifts over the tens of seconds FTS5 takes)."""
    done = Round([], [], [], [])
    rows = []
    for q in QUERIES:
        samples = timed(lambda q=q: whole_path(store, q.text), cpu=done.path_cpu)
        done.path += samples
        reply = whole_path(store, q.text)
        assert reply.kind is ReplyKind.RESULTS, (q.text, reply.title)
        rows.append((q, statistics.median(samples), len(reply.cards)))
        if db is not None:
            done.fts += timed(
                lambda q=q: fts_query(db, q), repeat=2 if n >= 1_000_000 else 3, cpu=done.fts_cpu
            )
    if number:
        print(f"--- round {number}")
    print(f"{'query':<18} {'text':<30} {'p50 ms':>8} {'hits':>5}")
    for q, med, hits in rows:
        print(f"{q.name:<18} {q.text:<30} {med:8.2f} {hits:5d}")
    p50, p95, p99 = percentiles(done.path)
    u50, u95, u99 = percentiles(done.path_cpu)
    print(
        f"WHOLE PATH (parse, index, rows, cards, Reply): p50 {p50:.2f} ms  p95 {p95:.2f} ms  "
        f"p99 {p99:.2f} ms  ({len(done.path)} runs)"
    )
    print(f"  CPU time of the same runs: p50 {u50:.2f} ms  p95 {u95:.2f} ms  p99 {u99:.2f} ms")
    # RSS counts the store's pages SQLite reads through its memory map (bot.db.MMAP_BYTES):
    # file pages the kernel can drop, not memory paperboy holds.
    print(f"RSS after queries: {rss_mb():,.0f} MB (peak {peak_rss_mb():,.0f} MB)", flush=True)
    if db is not None:
        f50, f95, f99 = percentiles(done.fts)
        g50, g95, g99 = percentiles(done.fts_cpu)
        print(
            f"FTS5 bm25, same queries between paperboy's: p50 {f50:.2f} ms  p95 {f95:.2f} ms  "
            f"p99 {f99:.2f} ms"
        )
        print(f"  FTS5 CPU time: p50 {g50:.2f} ms  p95 {g95:.2f} ms  p99 {g99:.2f} ms")
        print(
            f"  ratio FTS5 / paperboy whole path: wall p50 {f50 / p50:.1f}x  p95 {f95 / p95:.1f}x;"
            f"  CPU p50 {g50 / u50:.1f}x  p95 {g95 / u95:.1f}x",
            flush=True,
        )
    return done


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        mult = 1_000_000 if part.endswith("m") else 1_000 if part.endswith("k") else 1
        out.append(int(float(part.rstrip("mk")) * mult))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k,1m", help="corpus sizes, e.g. 10k,100k,1m")
    ap.add_argument("--no-baselines", action="store_true", help="skip FTS5 and rank_bm25")
    ap.add_argument("--workdir", help="where to build (default: a temporary directory)")
    ap.add_argument(
        "--no-cache",
        action="store_true",
        help="turn the index's caches off (answers, compiled queries): every run compiles and "
        "computes its answer (cold figures)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the query mix this many times and print the median of the rounds' figures",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the built stores (a later run with the same --workdir reuses them)",
    )
    args = ap.parse_args()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pb-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"paperboy search benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    print(
        f"query mix: {len(QUERIES)} queries x {REPEAT} runs (after a warm-up), "
        f"{LIMIT + 1} hits fetched per query"
    )
    try:
        for n in parse_sizes(args.sizes):
            run_size(
                n,
                workdir,
                not args.no_baselines,
                rank_bm25=(n == 100_000 and not args.no_baselines),
                cache=not args.no_cache,
                rounds=max(1, args.rounds),
            )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
