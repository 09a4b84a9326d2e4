"""`paperboy run` stops on SIGINT/SIGTERM within 10 s in every state, as `docker stop` needs.

Each test starts the real command in a subprocess, waits until it is in the state under test
(Slack unreachable and retrying, a refresh waiting on a source that never answers, a digest
tick waiting on Slack), sends a real signal and measures how long the process takes to exit.
No network: every host is a loopback port that is closed or never answers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.request import urlopen as _urlopen

import pytest

from tests.fakes import setup_channel

ROOT = Path(__file__).resolve().parents[1]


def fetch(url: str) -> bytes:
    """GET url and close the connection (a leaked socket warns in a later test)."""
    with _urlopen(url, timeout=5) as response:
        return bytes(response.read())


STOP_LIMIT = 10.0


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stall:
    """A loopback server that accepts connections, reads, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.requests: list[bytes] = []
        self.seen = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            return
        self.requests.append(data)
        self.seen.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def stall() -> Iterator[Stall]:
    server = Stall()
    yield server
    server.close()


def write_config(
    tmp_path: Path, *, source_port: int, slack_port: int, mode: str = "socket", tick: int = 300
) -> Path:
    sources = f"http://127.0.0.1:{source_port}"
    config = tmp_path / "paperboy.toml"
    config.write_text(
        f"""
[storage]
data_dir = "{tmp_path / "data"}"
[sources]
timeout_seconds = 60
retries = 0
[sources.huggingface]
base_url = "{sources}"
[sources.arxiv]
api_url = "{sources}/api/query"
feed_url = "{sources}/atom"
min_interval_seconds = 0
[digest]
tick_seconds = {tick}
[metrics]
host = "127.0.0.1"
port = 0
[slack]
mode = "{mode}"
host = "127.0.0.1"
port = {closed_port()}
api_base_url = "http://127.0.0.1:{slack_port}/api/"
""",
        encoding="utf-8",
    )
    return config


class Bot:
    """`paperboy run` in a subprocess, its log collected line by line."""

    def __init__(
        self, config: Path, env: dict[str, str], stdin: int | None = None, prelude: str = ""
    ) -> None:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PAPERBOY_", "SLACK_", "DISCORD_"))
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                prelude + "from bot.cli import main; raise SystemExit(main())",
                "run",
                "--config",
                str(config),
            ],
            cwd=ROOT,
            env={**clean, **env},
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"never logged {text!r}; log:\n{self.log}")

    def stop_with(self, sig: signal.Signals) -> tuple[int, float]:
        began = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=STOP_LIMIT + 5)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {STOP_LIMIT + 5} s after {sig.name}") from None
        took = time.monotonic() - began
        self.close()
        return code, took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stdin):
            if stream is not None:
                stream.close()


SLACK_ENV = {"SLACK_BOT_TOKEN": "xoxb-fake", "SLACK_APP_TOKEN": "xapp-fake"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_while_slack_is_unreachable_and_the_rest_keeps_running(
    tmp_path: Path, sig: signal.Signals
) -> None:
    config = write_config(tmp_path, source_port=closed_port(), slack_port=closed_port())
    bot = Bot(config, SLACK_ENV)
    # One plain line per backoff step...
    bot.wait_for("cannot reach Slack (connection refused): retrying in 5 s")
    # ...while the refresh runs anyway (its sources are unreachable too, and say so).
    bot.wait_for("refresh: ")
    if sig is signal.SIGTERM:
        # Operators can watch it meanwhile: health says Slack is retrying, metrics count the
        # failed source fetches.
        bot.wait_for("refresh: hf: FAILED")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/healthz", bot.log).group(1))  # type: ignore[union-attr]
        health = json.loads(fetch(f"http://127.0.0.1:{port}/healthz"))
        assert health["status"] == "ok"
        assert health["platforms"] == {"slack": "retrying: connection refused"}
        scraped = fetch(f"http://127.0.0.1:{port}/metrics").decode()
        assert 'paperboy_source_fetches_total{result="failed",source="hf"} 1.0' in scraped
        assert "paperboy_index_lag_seconds" in scraped
    code, took = bot.stop_with(sig)
    assert took < STOP_LIMIT, bot.log
    assert code == 0, bot.log
    assert "Traceback" not in bot.log
    assert bot.log.count("cannot reach Slack") == 1  # no retry storm within the first wait


def test_stops_mid_refresh_waiting_on_a_source(tmp_path: Path, stall: Stall) -> None:
    # The console platform (no tokens), stdin open and silent: the prompt waits for a line.
    config = write_config(tmp_path, source_port=stall.port, slack_port=closed_port())
    bot = Bot(config, {}, stdin=subprocess.PIPE)
    bot.wait_for("refresh: fetching new papers")
    assert stall.seen.wait(20), bot.log  # a source request is in flight, unanswered
    code, took = bot.stop_with(signal.SIGTERM)
    assert took < STOP_LIMIT, bot.log
    assert code == 0, bot.log
    assert "Traceback" not in bot.log


def test_stops_mid_tick_while_slack_does_not_answer_a_post(tmp_path: Path, stall: Stall) -> None:
    from bot.config import Settings
    from bot.runtime import open_store

    config = write_config(
        tmp_path, source_port=closed_port(), slack_port=stall.port, mode="http", tick=5
    )
    settings = Settings.load(config, environ={})
    store = open_store(settings)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    setup_channel(store, "slack:T1:C1", ["dpo"], yesterday)  # its digest is due now
    store.close()
    bot = Bot(config, {"SLACK_BOT_TOKEN": "xoxb-fake", "SLACK_SIGNING_SECRET": "s"})
    assert stall.seen.wait(30), bot.log
    bot.wait_for("Slack HTTP endpoint")
    deadline = time.monotonic() + 20
    while not any(b"chat.postMessage" in r for r in stall.requests):
        assert time.monotonic() < deadline, stall.requests
        time.sleep(0.05)
    code, took = bot.stop_with(signal.SIGTERM)
    assert took < STOP_LIMIT, bot.log
    assert code == 0, bot.log
    assert "Traceback" not in bot.log


def test_a_lost_socket_mode_connection_logs_one_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from adapters.slack import _SOCKET_LOG

    try:
        raise OSError("Cannot connect") from ConnectionRefusedError(111, "refused")
    except OSError:
        _SOCKET_LOG.exception("Failed to connect (error: x); Retrying...")
    (record,) = [r for r in caplog.records if r.name == "adapters.slack.socket"]
    assert record.getMessage() == "cannot reach Slack (connection refused): reconnecting"
    assert record.exc_info is None and record.levelno == logging.WARNING


@pytest.mark.parametrize(
    ("logger_name", "message"),
    [
        ("discord.client", "Attempting a reconnect in 1.50s"),  # discord.py's gateway loop
        ("adapters.discord", "Discord gateway stopped"),  # our task around it
    ],
)
def test_an_unreachable_discord_gateway_logs_one_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture, logger_name: str, message: str
) -> None:
    import logging
    import socket

    import adapters.discord  # noqa: F401 - installs the filters

    try:
        raise OSError("Cannot connect to host gateway.discord.gg:443") from socket.gaierror(
            -2, "Name or service not known"
        )
    except OSError:
        logging.getLogger(logger_name).exception(message)
    (record,) = [r for r in caplog.records if r.name == logger_name]
    assert record.getMessage() == "cannot reach Discord (DNS): reconnecting"
    assert record.exc_info is None and record.levelno == logging.WARNING
    assert "Traceback" not in caplog.text


def test_stops_while_discord_is_unreachable(tmp_path: Path) -> None:
    """Discord's REST login cannot connect (its API pointed at a closed loopback port): one
    line per backoff step, the rest runs, and SIGTERM stops it in time."""
    config = write_config(tmp_path, source_port=closed_port(), slack_port=closed_port())
    api = f"http://127.0.0.1:{closed_port()}/api/v10"
    bot = Bot(
        config,
        {"DISCORD_TOKEN": "fake-token"},
        prelude=f"import discord.http; discord.http.Route.BASE = {api!r}; ",
    )
    bot.wait_for("cannot reach Discord (connection refused): retrying in 5 s")
    bot.wait_for("refresh: hf: FAILED")  # the refresh runs meanwhile
    # The failed attempt did not end the bot: Discord is tried again after the backoff.
    bot.wait_for("cannot reach Discord (connection refused): retrying in 15 s")
    code, took = bot.stop_with(signal.SIGTERM)
    assert took < STOP_LIMIT, bot.log
    assert code == 0, bot.log
    assert "Traceback" not in bot.log
