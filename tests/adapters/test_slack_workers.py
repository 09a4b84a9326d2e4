"""`[slack] http_workers`: several processes answer Slack HTTP mode on one port, and they
all stop on SIGTERM. The real `paperboy run` in a subprocess; no network but loopback."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from adapters.slack_http import PROCESS_HEADER
from tests.test_lifecycle import STOP_LIMIT, Bot, closed_port

SECRET = "workers-signing-secret"
ENV = {"SLACK_BOT_TOKEN": "xoxb-fake", "SLACK_SIGNING_SECRET": SECRET}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp_path: Path, port: int, workers: int) -> Path:
    nowhere = f"http://127.0.0.1:{closed_port()}"
    path = tmp_path / "paperboy.toml"
    path.write_text(
        f"""
[storage]
data_dir = "{tmp_path / "data"}"
[sources]
retries = 0
[sources.huggingface]
base_url = "{nowhere}"
[sources.arxiv]
api_url = "{nowhere}/api/query"
feed_url = "{nowhere}/atom"
[metrics]
host = "127.0.0.1"
port = 0
[slack]
mode = "http"
host = "127.0.0.1"
port = {port}
http_workers = {workers}
api_base_url = "{nowhere}/api/"
""",
        encoding="utf-8",
    )
    return path


def ask(port: int, text: str, n: int) -> tuple[int, str, bytes]:
    """A signed `/papers <text>` on a new connection: (status, answering process, body)."""
    body = urlencode(
        {
            "team_id": "T1",
            "channel_id": "C1",
            "user_id": "U1",
            "command": "/papers",
            "text": text,
            "trigger_id": f"trigger-{n}-{time.time_ns()}",
            "response_url": f"http://127.0.0.1:{closed_port()}/r",
        }
    )
    ts = str(int(time.time()))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(
                SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
            ),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers[PROCESS_HEADER], response.read()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def two_processes(tmp_path: Path) -> tuple[int, Bot]:
    """`paperboy run` with `http_workers = 2`, its endpoint up: (port, the bot)."""
    port = free_port()
    bot = Bot(config(tmp_path, port, workers=2), ENV)
    try:
        bot.wait_for("worker processes share the port")
        bot.wait_for("Slack HTTP endpoint on")
    except BaseException:
        bot.kill()
        raise
    return port, bot


def test_two_processes_answer_commands_on_one_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    port, bot = two_processes(tmp_path)
    try:
        answered: dict[str, bytes] = {}
        for process, body in answering(port, within=30):
            answered[process] = body
            if len(answered) == 2:
                break
        assert len(answered) == 2, f"one process answered; log:\n{bot.log}"
        assert str(bot.proc.pid) in answered  # the main process, and one worker
        assert all(b"/papers" in body and b"blocks" in body for body in answered.values())
    except BaseException:
        bot.kill()
        raise
    code, took = bot.stop_with(signal.SIGTERM)
    assert code == 0 and took < STOP_LIMIT, bot.log
    workers = [int(pid) for pid in answered if int(pid) != bot.proc.pid]
    assert workers and not any(alive(pid) for pid in workers)
    assert "Traceback" not in bot.log


def test_check_config_explains_http_workers_outside_http_mode(tmp_path: Path) -> None:
    from bot.config import Settings
    from bot.errors import ConfigError

    path = tmp_path / "paperboy.toml"
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    path.write_text('[slack]\nmode = "socket"\nhttp_workers = 2\n', encoding="utf-8")
    [problem] = Settings.load(path, env).problems()
    assert "http_workers = 2" in problem and 'mode = "http"' in problem
    path.write_text('[slack]\nmode = "http"\nhttp_workers = 2\n', encoding="utf-8")
    assert Settings.load(path, {**env, "SLACK_SIGNING_SECRET": "s"}).problems() == []
    path.write_text("[slack]\nhttp_workers = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="http_workers"):
        Settings.load(path, env)


async def test_a_worker_finds_papers_the_main_process_stores_after_it_started(
    tmp_path: Path,
) -> None:
    from bot import http_workers
    from bot.config import Settings
    from bot.db import make_engine
    from bot.index import PaperIndex
    from bot.messages import ChannelRef, Invocation, UserRef
    from bot.service import BotService
    from bot.store import PaperStore
    from tests.conftest import NOW
    from tests.fakes import paper

    url = f"sqlite:///{tmp_path / 'paperboy.db'}"
    main = PaperStore(make_engine(url), PaperIndex(tmp_path / "index"))
    main.upsert_many(
        [paper("2402.00002", "Diffusion models for protein design", published_at=NOW)], NOW
    )
    worker = http_workers.follower_store(url, tmp_path / "index")
    service = BotService(Settings.load(None, {}), worker, clock=lambda: NOW)
    ask = Invocation(
        "preference optimization", ChannelRef("slack", "T1", "C1"), UserRef("slack", "U1")
    )
    try:
        assert (await service.ask(ask)).cards == ()  # asked (and cached) before it exists
        main.upsert_many(
            [paper("2305.18290", "Direct Preference Optimization", published_at=NOW)], NOW
        )
        assert [c.id for c in (await service.ask(ask)).cards] == ["2305.18290"]
        # The worker never writes the index: its own store writes leave it to the main process.
        worker.upsert_many(
            [paper("2403.00003", "Preference optimization, fetched on demand", published_at=NOW)],
            NOW,
        )
        assert [c.id for c in (await service.ask(ask)).cards] == ["2305.18290"]
        assert main.sync_index() == 1  # the main process's next tick indexes it
        found = [c.id for c in (await service.ask(ask)).cards]
        assert sorted(found) == ["2305.18290", "2403.00003"]
    finally:
        worker.close()
        main.close()


def test_a_worker_killed_with_sigkill_is_started_again(tmp_path: Path) -> None:
    # kill -9 on a worker (the OOM killer does the same): the first process starts another
    # one, which answers on the same port, and everything still stops on SIGTERM.
    port, bot = two_processes(tmp_path)
    try:
        first = worker_pid(port, bot.proc.pid)
        os.kill(first, signal.SIGKILL)
        bot.wait_for("stopped (exit code -9): starting it again")
        second = worker_pid(port, bot.proc.pid, not_pid=first)
        assert second != first and alive(second)
    except BaseException:
        bot.kill()
        raise
    code, took = bot.stop_with(signal.SIGTERM)
    assert code == 0 and took < STOP_LIMIT, bot.log
    assert not alive(second)
    assert "Traceback" not in bot.log


def worker_pid(port: int, main: int, not_pid: int = 0, within: float = 60.0) -> int:
    """The pid of a worker process that answers `/papers help` (not `main`, not `not_pid`)."""
    for process, _ in answering(port, within):
        if int(process) not in (main, not_pid):
            return int(process)
    raise AssertionError(f"no worker answered in {within} s")


def answering(port: int, within: float) -> Iterator[tuple[str, bytes]]:
    """(answering process, body) of `/papers help` asked again and again for `within`
    seconds; a refused or reset connection (a process starting, or just killed) is skipped."""
    deadline = time.monotonic() + within
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            status, process, body = ask(port, "help", n)
        except OSError:
            time.sleep(0.1)
            continue
        assert status == 200
        yield process, body
