"""What an operator sees: Prometheus metrics, /healthz, JSON logs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen as _urlopen

import pytest

from bot import metrics
from bot.config import Settings
from bot.db import make_engine
from bot.delivery import DeliveryReport
from bot.index import PaperIndex
from bot.messages import ChannelRef, Invocation, UserRef
from bot.service import BotService
from bot.store import PaperStore
from tests.conftest import NOW
from tests.fakes import paper

ROOT = Path(__file__).resolve().parents[1]


def fetch(url: str) -> bytes:
    """GET url and close the connection (a leaked socket warns in a later test)."""
    with _urlopen(url, timeout=5) as response:
        return bytes(response.read())


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_commands_are_counted_by_kind_with_their_latency(tmp_path: Path) -> None:
    store = PaperStore(
        make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), PaperIndex(tmp_path / "index")
    )
    store.upsert_many([paper("2305.18290", "DPO", upvotes=3, hf_daily_date=NOW.date())], NOW)
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    before = sample("paperboy_commands_total", {"kind": "search"})
    timed = sample("paperboy_command_seconds_count", {"kind": "top"})
    chan = ChannelRef("console", "local", "terminal")
    await service.ask(Invocation("dpo", chan, UserRef("console", "me")))
    await service.ask(Invocation("rlhf", chan, UserRef("console", "me")))
    await service.ask(Invocation("top", chan, UserRef("console", "me")))
    assert sample("paperboy_commands_total", {"kind": "search"}) == before + 2
    assert sample("paperboy_command_seconds_count", {"kind": "top"}) == timed + 1
    store.close()


def test_deliveries_are_counted_by_outcome() -> None:
    sent = sample("paperboy_deliveries_total", {"outcome": "sent"})
    unknown = sample("paperboy_deliveries_total", {"outcome": "unknown"})
    metrics.observe_delivery(DeliveryReport(digests=2, papers_sent=5, unknown=1))
    assert sample("paperboy_deliveries_total", {"outcome": "sent"}) == sent + 5
    assert sample("paperboy_deliveries_total", {"outcome": "unknown"}) == unknown + 1


def test_newest_paper_age_is_read_from_the_store() -> None:
    class State:
        source = "hf"
        newest_paper_at = NOW - timedelta(hours=2)

    collector = metrics.StoreCollector(lambda: [State()], lambda: NOW.timestamp())
    families = {f.name: f for f in collector.collect()}
    (value,) = families["paperboy_newest_paper_age_seconds"].samples
    assert value.labels == {"source": "hf"} and value.value == 7200


async def test_health_and_metrics_endpoints_answer() -> None:
    server = metrics.MetricsServer("127.0.0.1", 0, health=lambda: {"platforms": {"x": "ok"}})
    port = await server.start()
    assert port
    try:
        import asyncio

        health = await asyncio.to_thread(
            lambda: json.loads(fetch(f"http://127.0.0.1:{port}/healthz"))
        )
        assert health["status"] == "ok" and health["platforms"] == {"x": "ok"}
        text = await asyncio.to_thread(lambda: fetch(f"http://127.0.0.1:{port}/metrics").decode())
        assert "# TYPE paperboy_commands_total counter" in text
        with pytest.raises(HTTPError) as missing:
            await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/nope")
        assert missing.value.code == 404
        missing.value.close()
    finally:
        await server.stop()


async def test_a_busy_port_is_one_log_line_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = metrics.MetricsServer("127.0.0.1", port)
        assert await server.start() is None
    assert "cannot serve /healthz and /metrics" in caplog.text


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[storage]\ndata_dir = "{tmp_path}"\n[logging]\nformat = "json"\n'
        f'[sources.huggingface]\nbase_url = "http://127.0.0.1:{port}"\n'
        "[sources.arxiv]\nenabled = false\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "bot", "fetch", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 1
    lines = [json.loads(line) for line in out.stderr.strip().splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    assert any("cannot reach 127.0.0.1" in e["message"] for e in lines)
