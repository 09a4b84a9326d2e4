"""Slack HTTP mode under load: time from a signed `/papers <query>` POST to its ack response.

A SQLite store + tantivy index of N synthetic papers (default 1M; `bench/search.py`'s corpus
generator) is served by `SlackAdapter` in HTTP mode on loopback. A second process sends signed
slash-command requests, 50 in flight at a time, with the query mix of `bench/search.py`, and
measures each request from send to the full ack body (Slack's 3 s deadline; budget p99 300 ms).
The load generator is a raw-socket asyncio client on kept-alive connections, with every request
signed before the clock starts: it shares the machine's cores with the server, so its own CPU
per request is printed (`gen cpu`) beside the server's (`srv cpu`).

Servers, same run, in turn (two rounds, the second in reverse order):
- `paperboy`: one process, as `paperboy run` with `[slack] http_workers = 1`;
- `paperboy xN`: N processes on one port (SO_REUSEPORT), `bot.http_workers`' own worker code;
- `bolt path`: one process with the slash-command short path off (bolt's dispatch, as before);
- `baseline`: an adapter whose core answers a fixed one-line reply without touching the store:
  the floor of aiohttp + signature check + the act-once guard + rendering.

    .venv/bin/python bench/slack_http.py --scenario sustained --workdir DIR   # 1M papers
    .venv/bin/python bench/slack_http.py --scenario busy --workdir DIR        # 40k previews
    .venv/bin/python bench/slack_http.py --papers 100k    # quicker
The store is built once in `--workdir` (store-<n>.db + index-<n>, as `bench/search.py --keep`
leaves; ~7 min for 1M) and reused. Not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from adapters.slack import SlackAdapter  # noqa: E402
from bench.search import NOW, QUERIES, Corpus  # noqa: E402
from bot import http_workers  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.index import open_index  # noqa: E402
from bot.messages import ChannelRef, Invocation, Reply, UserRef, info  # noqa: E402
from bot.service import BotService  # noqa: E402
from bot.store import PaperStore  # noqa: E402

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
CONCURRENCY = 50


# ---------------------------------------------------------------------------- server side


def open_or_build(n: int, workdir: Path) -> tuple[PaperStore, float]:
    """The store of `n` papers in `workdir`, built (and kept) if it is not there yet."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path, index_path = workdir / f"store-{n}.db", workdir / f"index-{n}"
    store = PaperStore(make_engine(f"sqlite:///{db_path}"), index=open_index(index_path))
    assert store.index is not None
    t0 = time.perf_counter()
    # An index left behind by another schema version is rebuilt from the store here.
    caught_up = store.sync_index()
    have = start = store.count()
    papers = itertools.islice(Corpus(n).papers(), have, None)
    while have < n and (chunk := list(itertools.islice(papers, 20_000))):
        store.upsert_many(chunk, NOW - timedelta(days=1))
        have = store.count()
        print(f"  built {have:,}/{n:,}", flush=True)
    changed = caught_up > 0 or have > start
    if changed:
        print(f"  indexed {caught_up:,} papers from the store", flush=True)
        store.index.optimize()  # as `bench/search.py` does: merged segments, as in production
    store.index.close()  # commit and release the writer
    return store, time.perf_counter() - t0 if changed else 0.0


class FixedService(BotService):
    """The baseline core: one fixed line, no store."""

    async def handle(self, inv: Invocation) -> Reply:
        return info("ok", f"you typed {inv.text}")


async def fake_web_api() -> tuple[web.AppRunner, str]:
    """Just enough Slack Web API for bolt's authorization (`auth.test`, called once)."""

    async def auth_test(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "team_id": "T0BENCH",
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team": "bench",
                "user": "paperboy",
            }
        )

    app = web.Application()
    app.router.add_post("/api/auth.test", auth_test)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/api/"


def http_settings(api: str, port: int = 0) -> Settings:
    base = Settings.load(None, {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET})
    return base.model_copy(
        update={
            "slack": base.slack.model_copy(
                update={"mode": "http", "host": "127.0.0.1", "port": port, "api_base_url": api}
            )
        }
    )


# ---------------------------------------------------------------------------- client side


def client_main(
    ports: dict[str, int], pids: dict[str, list[int]], total: int, out: Any, client: str = "raw"
) -> None:
    """The second process: drive each server in turn, send back the latencies."""
    run = _run_aiohttp if client == "aiohttp" else _run
    out.send(asyncio.run(_drive(ports, pids, total, run)))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


Run = Callable[[int, list[str], int], Awaitable[tuple[list[float], int]]]


async def _drive(
    ports: dict[str, int], pids: dict[str, list[int]], total: int, run: Run
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    texts = [q.text for q in QUERIES]
    # Warm-up: connections, page cache, and each process's result cache (every query reaches
    # every process of a pool: the kernel spreads connections, not queries).
    for name, port in ports.items():
        await run(port, texts, 10 * len(texts))
        results[name] = {
            "samples": [],
            "failures": 0,
            "wall": 0.0,
            "burst": [],
            "server_cpu": 0.0,
            "client_cpu": 0.0,
        }
    # Two rounds, the second in reverse order, so no server gains from going last.
    for order in (list(ports), list(reversed(ports))):
        for name in order:
            r = results[name]
            cpu0, mine0 = cpu_seconds(pids[name]), time.process_time()
            t0 = time.perf_counter()
            samples, failures = await run(ports[name], texts, total // 2)
            r["wall"] += time.perf_counter() - t0
            r["server_cpu"] += cpu_seconds(pids[name]) - cpu0
            r["client_cpu"] += time.process_time() - mine0
            r["samples"] += samples
            # One burst of exactly 50 at once, the brief's scenario.
            burst, burst_fail = await run(ports[name], texts, CONCURRENCY)
            r["burst"] += burst
            r["failures"] += failures + burst_fail
    return results


def command_body(texts: list[str], i: int, tag: str) -> str:
    """The form body of the `i`-th slash command of a run."""
    return urlencode(
        {
            "team_id": "T0BENCH",
            "channel_id": f"C{i % 97}",
            "user_id": "U1",
            "user_name": "bench",
            "command": "/papers",
            "text": texts[i % len(texts)],
            "response_url": "http://127.0.0.1:9/unused",
            # Unique: a repeated trigger_id is a replay, acknowledged and not acted on.
            "trigger_id": f"{tag}{os.getpid()}.{i}.{time.time_ns()}",
            "api_app_id": "A1",
        }
    )


def signed_requests(port: int, texts: list[str], total: int) -> list[bytes]:
    """`total` signed slash-command requests, made before the clock starts (HMAC included)."""
    verifier = SignatureVerifier(SECRET)
    out = []
    ts = str(int(time.time()))
    for i in range(total):
        body = command_body(texts, i, "t")
        signature = verifier.generate_signature(timestamp=ts, body=body)
        out.append(
            f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
        )
    return out


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """One request on a kept-alive connection: (status, body)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def _run(port: int, texts: list[str], total: int) -> tuple[list[float], int]:
    """`total` requests, CONCURRENCY in flight, each connection kept alive: a raw-socket
    client, so the load generator costs little of the two cores it shares with the server."""
    requests = iter(signed_requests(port, texts, total))
    samples: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in requests:
                t0 = time.perf_counter()
                status, payload = await _exchange(reader, writer, request)
                samples.append((time.perf_counter() - t0) * 1000)
                if status != 200 or b"blocks" not in payload:
                    failures += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return samples, failures


async def _run_aiohttp(port: int, texts: list[str], total: int) -> tuple[list[float], int]:
    """The previous load generator (`--client aiohttp`), for comparison: an aiohttp session,
    each request signed inside the timed loop."""
    verifier = SignatureVerifier(SECRET)
    counter = itertools.count()
    samples: list[float] = []
    failures = 0
    url = f"http://127.0.0.1:{port}/slack/events"

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal failures
        while (i := next(counter)) < total:
            body = command_body(texts, i, "a")
            ts = str(int(time.time()))
            headers = {
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            t0 = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as response:
                payload = await response.read()
            samples.append((time.perf_counter() - t0) * 1000)
            if response.status != 200 or b"blocks" not in payload:
                failures += 1

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    return samples, failures


# ---------------------------------------------------------------------------- main


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def serve(
    store: PaperStore, total: int, workers: int, db: Path, index: Path, generator: str = "raw"
) -> dict[str, Any]:
    runner, api = await fake_web_api()
    settings = http_settings(api)
    service = BotService(settings, store, clock=lambda: NOW)
    real = SlackAdapter(service, settings)
    floor = SlackAdapter(FixedService(settings, store, clock=lambda: NOW), settings)
    # The same core behind bolt's own dispatch (the short path for slash commands off): what
    # bolt's middleware costs, for the comparison.
    bolt = SlackAdapter(BotService(settings, store, clock=lambda: NOW), settings)
    bolt.http.setup.command = "/bolt-path-only"
    ports = {
        "paperboy": await real.serve_http("127.0.0.1", 0),
        "bolt path": await bolt.serve_http("127.0.0.1", 0),
        "baseline": await floor.serve_http("127.0.0.1", 0),
    }
    ctx = mp.get_context("spawn")
    pool_port = free_port()
    procs = []
    for _ in range(workers):
        ready, ready_send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main, args=(db, index, api, pool_port, ready_send, os.getpid())
        )
        proc.start()
        await asyncio.get_running_loop().run_in_executor(None, ready.recv)
        procs.append(proc)
    ports[f"paperboy x{workers}"] = pool_port
    pids = {
        "paperboy": [os.getpid()],
        "baseline": [os.getpid()],
        "bolt path": [os.getpid()],
        f"paperboy x{workers}": [p.pid for p in procs if p.pid is not None],
    }
    receive, send = ctx.Pipe(duplex=False)
    client = ctx.Process(target=client_main, args=(ports, pids, total, send, generator))
    client.start()
    loop = asyncio.get_running_loop()
    results: dict[str, Any] = await loop.run_in_executor(None, receive.recv)
    await loop.run_in_executor(None, client.join)
    for proc in procs:
        proc.terminate()  # SIGTERM, as `paperboy run` stops its workers
        await loop.run_in_executor(None, proc.join)
    for adapter in (real, floor, bolt):
        await adapter.stop()
    await runner.cleanup()
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_main(db: Path, index: Path, api: str, port: int, ready: Any, parent: int) -> None:
    """One of several server processes on one port: `paperboy run`'s own worker code
    (`bot.http_workers`, SO_REUSEPORT), on the benchmark's store; stopped by SIGTERM."""

    async def run() -> None:
        store = http_workers.follower_store(f"sqlite:///{db}", index)
        settings = http_settings(api, port)
        service = BotService(settings, store, clock=lambda: NOW)
        await http_workers.serve_worker(service, settings, parent, lambda: ready.send(True))
        store.close()

    asyncio.run(run())


# ---------------------------------------------------------------------------- busy scenario

BUSY_TOPICS = ["language models", "diffusion", "reinforcement learning"]
BUSY_CHANNELS = 10
BUSY_SEARCHES = 50


def busy(workdir: Path, window: int) -> None:
    """10 `/papers digest` previews, each over a window of `window` papers, sent at once
    together with 50 searches (10 in flight). Baseline, same run: the 50 searches alone."""
    workdir.mkdir(parents=True, exist_ok=True)
    # Every paper announced an hour before NOW, inside every channel's window (the papers'
    # own dates would spread them over years: a preview would see a few dozen).
    name = f"busy-announced-{window}"
    db = workdir / f"{name}.db"
    store = PaperStore(make_engine(f"sqlite:///{db}"), index=open_index(workdir / name))
    store.sync_index()  # an index left by another schema version was rebuilt empty
    if store.count() < window:
        t0 = time.perf_counter()
        papers = itertools.islice(Corpus(window).papers(), store.count(), None)
        while chunk := list(itertools.islice(papers, 20_000)):
            store.upsert_many(
                chunk, NOW - timedelta(hours=1), announced_at=NOW - timedelta(hours=1)
            )
        print(
            f"busy store: {store.count():,} papers built in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    results = asyncio.run(_busy_serve(store))
    store.close()
    base, loaded = results["alone"], results["searches"]
    previews, answered = results["previews"], results["answered"]
    print(
        f"busy: {BUSY_CHANNELS} concurrent /papers digest previews over a {window:,}-paper "
        f"window + {BUSY_SEARCHES} searches (10 in flight); client in a second process"
    )
    print(
        f"  every ack under 3 s: {max(previews + loaded) < 3000}  "
        f"(max preview ack {max(previews):.0f} ms, max search ack {max(loaded):.0f} ms)"
    )
    print(
        f"  searches p50 {statistics.median(loaded):.1f} ms  p99 {pct(loaded, 99):.1f} ms; "
        f"baseline (alone, same run) p50 {statistics.median(base):.1f} ms  "
        f"p99 {pct(base, 99):.1f} ms; ratio p99 {pct(loaded, 99) / pct(base, 99):.1f}x"
    )
    print(
        f"  previews answered through response_url: {len(answered)}/{BUSY_CHANNELS}, "
        f"last after {max(answered, default=float('nan')) / 1000:.1f} s; "
        f"a preview says: {results['preview']!r}"
    )


async def _busy_serve(store: PaperStore) -> dict[str, Any]:
    runner, api = await fake_web_api()
    settings = http_settings(api)
    service = BotService(settings, store, clock=lambda: NOW)
    for k in range(BUSY_CHANNELS):
        channel = ChannelRef("slack", "T0BENCH", f"CB{k}")
        for topic in BUSY_TOPICS:
            await service.ask(Invocation(f"subscribe {topic}", channel, UserRef("slack", "U1")))
    adapter = SlackAdapter(service, settings)
    port = await adapter.serve_http("127.0.0.1", 0)
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    client = ctx.Process(target=busy_client_main, args=(port, send))
    client.start()
    loop = asyncio.get_running_loop()
    results: dict[str, Any] = await loop.run_in_executor(None, receive.recv)
    await loop.run_in_executor(None, client.join)
    # What a preview showed (after the run: computing it before would warm the caches).
    sample = await service.ask(
        Invocation("digest", ChannelRef("slack", "T0BENCH", "CB0"), UserRef("slack", "U1"))
    )
    results["preview"] = sample.title
    await adapter.stop()
    await runner.cleanup()
    return results


def busy_client_main(port: int, out: Any) -> None:
    out.send(asyncio.run(_busy_drive(port)))


async def _busy_drive(port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/slack/events"
    answered: list[float] = []
    start = 0.0

    async def sink(_request: web.Request) -> web.Response:
        answered.append((time.perf_counter() - start) * 1000)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/respond", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/respond"  # type: ignore[union-attr]
    verifier = SignatureVerifier(SECRET)
    texts = [q.text for q in QUERIES]
    serial = itertools.count()

    async def post(http: aiohttp.ClientSession, text: str, channel: str) -> float:
        body = urlencode(
            {
                "team_id": "T0BENCH",
                "channel_id": channel,
                "user_id": "U1",
                "user_name": "bench",
                "command": "/papers",
                "text": text,
                "response_url": sink_url,
                "trigger_id": f"busy{os.getpid()}.{next(serial)}.{time.time_ns()}",
                "api_app_id": "A1",
            }
        )
        ts = str(int(time.time()))
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        t0 = time.perf_counter()
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        return (time.perf_counter() - t0) * 1000

    async def searches(http: aiohttp.ClientSession) -> list[float]:
        jobs = iter(range(BUSY_SEARCHES))
        out: list[float] = []

        async def worker() -> None:
            for i in jobs:
                out.append(await post(http, texts[i % len(texts)], f"CS{i % 7}"))

        await asyncio.gather(*(worker() for _ in range(10)))
        return out

    async with aiohttp.ClientSession() as http:
        await searches(http)  # warm-up
        alone = await searches(http)
        start = time.perf_counter()
        preview_tasks = [
            asyncio.create_task(post(http, "digest", f"CB{k}")) for k in range(BUSY_CHANNELS)
        ]
        loaded = await searches(http)
        previews = await asyncio.gather(*preview_tasks)
        deadline = time.perf_counter() + 300
        while len(answered) < BUSY_CHANNELS and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
    await runner.cleanup()
    return {"alone": alone, "searches": loaded, "previews": previews, "answered": answered}


def parse_n(text: str) -> int:
    text = text.lower().replace("_", "")
    for suffix, factor in (("k", 1_000), ("m", 1_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", default="1m", help="store size, e.g. 100k or 1m (default 1m)")
    ap.add_argument("--requests", type=int, default=2_000, help="requests per server")
    ap.add_argument(
        "--workdir",
        default=str(Path(__file__).parent / "out" / "slack-http"),
        help="where the store is built and kept for the next run",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="server processes on one port (SO_REUSEPORT) for the pooled figure",
    )
    ap.add_argument(
        "--scenario",
        choices=("sustained", "busy", "all"),
        default="all",
        help="sustained: 2,000 searches at 50 in flight; busy: 10 digest previews "
        "over a large window plus 50 searches",
    )
    ap.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="load generator: raw sockets (default) or the former aiohttp client",
    )
    ap.add_argument("--window", default="40k", help="papers in the busy scenario's window")
    args = ap.parse_args()
    n = parse_n(args.papers)
    if args.scenario == "busy":
        busy(Path(args.workdir), parse_n(args.window))
        return
    print(
        f"paperboy Slack HTTP-mode benchmark {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"
    )
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    args.window = parse_n(args.window)
    store, built = open_or_build(n, Path(args.workdir))
    print(
        f"store: {store.count():,} papers"
        + (f" (built in {built:.0f} s)" if built else " (reused)"),
        flush=True,
    )
    workdir = Path(args.workdir)
    if args.scenario in ("busy", "all"):
        busy(workdir, args.window)
    load_before = os.getloadavg()
    results = asyncio.run(
        serve(
            store,
            args.requests,
            args.workers,
            workdir / f"store-{n}.db",
            workdir / f"index-{n}",
            generator=args.client,
        )
    )
    print(
        f"{args.requests} signed /papers requests per server, {CONCURRENCY} in flight, "
        f"{args.client} load generator in a second process; {len(QUERIES)}-query mix of "
        "bench/search.py; cpu: ms of CPU per request (server processes, load generator)"
    )
    print(
        f"{'server':<13} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'req/s':>6} {'burst p99':>9} {'srv cpu':>7} {'gen cpu':>7} {'failed':>6}"
    )
    names = ("paperboy", f"paperboy x{args.workers}", "bolt path", "baseline")
    for name in names:
        r = results[name]
        s = r["samples"]
        print(
            f"{name:<13} {statistics.median(s):7.1f} {pct(s, 95):7.1f} {pct(s, 99):7.1f} "
            f"{max(s):7.1f} {len(s) / r['wall']:6.0f} {pct(r['burst'], 99):9.1f} "
            f"{1000 * r['server_cpu'] / len(s):7.2f} {1000 * r['client_cpu'] / len(s):7.2f} "
            f"{r['failures']:6d}"
        )
    floor = results["baseline"]["samples"]
    for name in names[:3]:
        real = results[name]["samples"]
        p50_ratio = statistics.median(real) / statistics.median(floor)
        p99_ratio = pct(real, 99) / pct(floor, 99)
        print(
            f"ratio {name} / baseline: p50 {p50_ratio:.1f}x  p99 {p99_ratio:.1f}x"
            "   (budget: p99 <= 300 ms; Slack: 3 s)"
        )
    print(f"load average (1, 5, 15 min) before {load_before}, after {os.getloadavg()}")
    one, pooled = results["paperboy"]["samples"], results[f"paperboy x{args.workers}"]["samples"]
    print(
        f"ratio paperboy x{args.workers} / paperboy (one process): "
        f"p50 {statistics.median(pooled) / statistics.median(one):.2f}x  "
        f"p99 {pct(pooled, 99) / pct(one, 99):.2f}x"
    )
    print(
        json.dumps(
            {
                "papers": store.count(),
                "p99_ms": round(pct(one, 99), 1),
                f"p99_ms_x{args.workers}": round(pct(pooled, 99), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
