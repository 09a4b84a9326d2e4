"""What an operator watches: Prometheus metrics and a small HTTP endpoint for them.

`paperboy run` serves, in every mode (console, Slack Socket Mode or HTTP, Discord):
- `GET /healthz`: 200 and a JSON line with each platform's state, for health checks;
- `GET /metrics`: the Prometheus text format.

The server is a few lines over `asyncio.start_server` rather than a web framework: it must run
without the optional Slack extra (aiohttp), and it only ever answers two GETs. The metrics live
in their own registry, so tests and several services in one process never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "paperboy_commands",
    "Commands answered, by kind (search, top, subscribe...)",
    ["kind"],
    registry=REGISTRY,
)
COMMAND_SECONDS = Histogram(
    "paperboy_command_seconds",
    "Time to answer a command, by kind",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DIGESTS = Counter(
    "paperboy_digests",
    "Digest runs by outcome (built, empty, owned_elsewhere)",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "paperboy_deliveries",
    "Papers by delivery outcome (sent, failed, unknown, retried)",
    ["outcome"],
    registry=REGISTRY,
)
SOURCE_FETCHES = Counter(
    "paperboy_source_fetches",
    "Source refreshes by source and result (ok, failed)",
    ["source", "result"],
    registry=REGISTRY,
)
INDEX_SYNCED = Gauge(
    "paperboy_index_last_sync_timestamp_seconds",
    "When this process's search index last caught up with the store (Unix time)",
    registry=REGISTRY,
)


def observe_command(kind: str, seconds: float) -> None:
    COMMANDS.labels(kind).inc()
    COMMAND_SECONDS.labels(kind).observe(seconds)


def observe_delivery(report: Any) -> None:
    """Count one digest tick's `DeliveryReport`."""
    DIGESTS.labels("built").inc(report.digests)
    DIGESTS.labels("empty").inc(report.empty)
    DIGESTS.labels("owned_elsewhere").inc(report.skipped)
    DELIVERIES.labels("sent").inc(report.papers_sent)
    DELIVERIES.labels("failed").inc(report.failed)
    DELIVERIES.labels("unknown").inc(report.unknown)
    DELIVERIES.labels("retried").inc(report.retried)


def observe_refresh(report: Any) -> None:
    """Count one refresh's `RefreshReport`, source by source."""
    for name, result in report.sources.items():
        SOURCE_FETCHES.labels(name, "failed" if result.error else "ok").inc()


def observe_index_sync(now: float | None = None) -> None:
    INDEX_SYNCED.set(now if now is not None else time.time())


class StoreCollector(Collector):
    """Read at scrape time from the store: the age of each source's newest paper, and how
    long ago the index last caught up (its lag, at most one digest tick when healthy)."""

    def __init__(self, states: Callable[[], Iterable[Any]], clock: Callable[[], float]) -> None:
        self.states = states
        self.clock = clock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        now = self.clock()
        age = GaugeMetricFamily(
            "paperboy_newest_paper_age_seconds",
            "Age of the newest paper each source delivered",
            labels=["source"],
        )
        try:
            for state in self.states():
                newest = getattr(state, "newest_paper_at", None)
                if newest is not None:
                    if newest.tzinfo is None:
                        newest = newest.replace(tzinfo=UTC)
                    age.add_metric([state.source], max(0.0, now - newest.timestamp()))
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even if the DB is down
            logger.warning("metrics: cannot read source states: %s", exc)
        yield age
        lag = GaugeMetricFamily(
            "paperboy_index_lag_seconds",
            "Seconds since this process's search index last caught up with the store",
        )
        synced = INDEX_SYNCED._value.get()
        if synced:
            lag.add_metric([], max(0.0, now - synced))
        yield lag


class MetricsServer:
    """`GET /healthz` and `GET /metrics` on host:port (port 0: any free port)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: Callable[[], dict[str, Any]] | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.host = host
        self.port = port
        self.health = health or (dict)
        self.registry = registry
        self._server: asyncio.Server | None = None

    async def start(self) -> int | None:
        """Listen; the port it got, or None (one log line) when it cannot listen."""
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            logger.warning(
                "cannot serve /healthz and /metrics on %s:%d (%s); running without them",
                self.host,
                self.port,
                exc.strerror or exc,
            )
            return None
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = path.split("?", 1)[0]
            if method != "GET":
                status, kind, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/healthz":
                state = {"status": "ok", "time": datetime.now(UTC).isoformat(), **self.health()}
                status, kind, body = "200 OK", "application/json", json.dumps(state).encode()
            elif path == "/metrics":
                body = await asyncio.to_thread(generate_latest, self.registry)
                status, kind = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
            else:
                status, kind, body = "404 Not Found", "text/plain", b"/healthz or /metrics\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            OSError,
        ):
            pass  # a client that sends nothing useful gets nothing
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
