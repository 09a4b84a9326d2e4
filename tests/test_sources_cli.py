"""`paperboy fetch` and `paperboy import` end to end, against a loopback HTTP server.

The server serves the real captures of ../shared/fixtures (read at test time, never copied):
the first fetch fills the store, a second one adds nothing new. A failing server makes
`fetch` exit 1 and say which source failed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from bot.cli import main
from bot.config import Settings
from bot.db import make_engine
from bot.store import PaperStore
from tests.conftest import FIXTURES, SHARED_FIXTURES

HF_CAPTURE = SHARED_FIXTURES / "hf_api" / "daily_papers_2026-06-12_sotawhat_30items.json"
FEED_CAPTURE = SHARED_FIXTURES / "arxiv_rss" / "atom_feed_cs.AI_2025-08-20_zotero-arxiv-daily.xml"


class Captures(BaseHTTPRequestHandler):
    """Daily papers: the 2026-06-12 capture on page 0 of any date; the cs.AI Atom feed."""

    fail = False
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        self.seen.append(self.path)
        if self.fail:
            self._send(503, b"down for maintenance", "text/plain")
        elif url.path == "/api/daily_papers":
            page = parse_qs(url.query).get("p", ["0"])[0]
            body = HF_CAPTURE.read_bytes() if page == "0" else b"[]"
            self._send(200, body, "application/json")
        elif url.path == "/atom/cs.AI":
            self._send(200, FEED_CAPTURE.read_bytes(), "application/atom+xml")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Captures)
    Captures.fail = False
    Captures.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def config(tmp_path: Path, base: str) -> str:
    path = tmp_path / "paperboy.toml"
    path.write_text(
        f"""
[storage]
data_dir = "{tmp_path / "data"}"

[sources]
retries = 1
timeout_seconds = 5

[sources.huggingface]
base_url = "{base}"
refresh_days = 1

[sources.arxiv]
api_url = "{base}/api/query"
feed_url = "{base}/atom"
categories = ["cs.AI"]
min_interval_seconds = 0
""",
        encoding="utf-8",
    )
    return str(path)


def store_of(cfg: str) -> PaperStore:
    return PaperStore(make_engine(Settings.load(cfg, environ={}).database_url))


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} is absent")
def test_fetch_fills_the_store_and_a_second_run_adds_nothing(
    tmp_path: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, server)
    assert main(["--config", cfg, "fetch"]) == 0
    out = capsys.readouterr().out
    assert "hf: 30 fetched, 30 added, 0 updated" in out  # two days asked, the same 30
    assert "arxiv: 7 fetched, 7 added, 0 updated" in out
    store = store_of(cfg)
    assert store.count() == 37
    paper = store.get("2606.12575")
    assert paper is not None and paper.upvotes is not None and paper.sources == ["hf"]
    states = {s.source: s for s in store.source_states()}
    assert states["hf"].consecutive_failures == 0 and states["hf"].last_success_at
    assert states["arxiv"].newest_paper_at is not None
    store.engine.dispose()

    assert main(["--config", cfg, "fetch"]) == 0
    out = capsys.readouterr().out
    assert "hf: 30 fetched, 0 added, 0 updated" in out
    assert "arxiv: 7 fetched, 0 added, 0 updated" in out
    assert any("limit=100" in path and "p=0" in path for path in Captures.seen)


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} is absent")
def test_fetch_one_source_on_one_date(
    tmp_path: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, server)
    assert main(["--config", cfg, "fetch", "--source", "hf", "--date", "2026-06-12"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "hf: 30 fetched, 30 added, 0 updated"
    # What it is doing goes to stderr while it waits, one line per step.
    assert captured.err.splitlines() == ["hf: Daily Papers of 2026-06-12"]
    assert [p for p in Captures.seen if "date=" in p] == [
        "/api/daily_papers?date=2026-06-12&limit=100&p=0"
    ]


def test_fetch_against_a_failing_server_says_so_and_exits_1(
    tmp_path: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, server)
    Captures.fail = True
    assert main(["--config", cfg, "fetch", "--source", "arxiv"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("arxiv: FAILED: HTTP 503 after 2 attempts")
    store = store_of(cfg)
    assert store.count() == 0
    (state,) = store.source_states()
    assert state.consecutive_failures == 1 and "503" in (state.last_error or "")
    store.engine.dispose()


def test_fetch_rejects_a_bad_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--config", config(tmp_path, "http://127.0.0.1:9"), "fetch", "--date", "June"])
    assert "is not a date like 2026-06-12" in capsys.readouterr().err


def test_import_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, "http://127.0.0.1:9")
    snapshot = FIXTURES / "sources" / "snapshot.jsonl"
    assert main(["--config", cfg, "import", str(snapshot), "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 lines, 1 added" in out and "stopped early" in out
    assert main(["--config", cfg, "import", str(snapshot)]) == 0
    captured = capsys.readouterr()
    assert "2 added" in captured.out and "resumed at byte" in captured.out
    assert "100.0%" in captured.err  # the progress bar goes to stderr
    store = store_of(cfg)
    assert store.count() == 3
    store.engine.dispose()


class Truncating(BaseHTTPRequestHandler):
    """Promises a long body, sends a few bytes and hangs up (a reset mid-response)."""

    healthy_after = 1_000  # requests before it starts answering properly
    calls = 0

    def do_GET(self) -> None:  # noqa: N802
        type(self).calls += 1
        body = b'[{"paper": {"id": "2606.00001", "title": "Whole", "upvotes": 1}}]'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.calls <= self.healthy_after:
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(body[:20])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def truncating() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Truncating)
    Truncating.calls = 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_connection_cut_mid_body_is_retried(
    tmp_path: Path, truncating: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, truncating)
    Truncating.healthy_after = 1  # the first answer is cut, the retry is whole
    assert main(["--config", cfg, "fetch", "--source", "hf", "--date", "2026-06-12"]) == 0
    assert "hf: 1 fetched, 1 added" in capsys.readouterr().out


def test_connection_always_cut_leaves_the_store_unchanged(
    tmp_path: Path, truncating: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, truncating)
    Truncating.healthy_after = 1_000
    assert main(["--config", cfg, "fetch", "--source", "hf", "--date", "2026-06-12"]) == 1
    assert "hf: FAILED: connection failed" in capsys.readouterr().out
    store = store_of(cfg)
    assert store.count() == 0
    (state,) = store.source_states()
    assert state.source == "hf" and state.consecutive_failures == 1
    store.engine.dispose()
