"""The `paperboy` command line as an operator meets it: help, bad arguments, offline, exit codes."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli_parser import build_parser
from bot.config import Settings
from bot.runtime import open_store
from tests.conftest import NOW
from tests.fakes import paper

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    port = closed_port()
    path = tmp_path / "c.toml"
    path.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[sources.huggingface]\nbase_url = "http://127.0.0.1:{port}"\n'
        f'[sources.arxiv]\napi_url = "http://127.0.0.1:{port}/api"\n'
        f'feed_url = "http://127.0.0.1:{port}/atom"\nmin_interval_seconds = 0\n'
    )
    return str(path)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("paperboy ")


def test_every_subcommand_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    names = build_parser()[1].names
    assert {"run", "demo", "search", "digest", "check-config"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        usage, description, *_ = capsys.readouterr().out.split("\n\n")
        assert usage.startswith(f"usage: paperboy {name}"), name
        assert description.strip()[:1].isupper() and description.strip().endswith("."), name


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "dpo", "--limit", "-1"],
        ["search", "dpo", "--limit", "0"],
        ["import", "x.json", "--limit", "-5"],
    ],
)
def test_a_limit_below_one_is_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "at least 1" in err or "between 1 and" in err


def test_config_is_accepted_after_the_subcommand(cfg: str) -> None:
    assert main(["search", "dpo", "--config", cfg]) == 0
    # ...and before it; the data directory of that file is the one used.
    assert main(["--config", cfg, "search", "dpo"]) == 0
    assert (Path(cfg).parent / "data").is_dir()


def test_an_empty_store_says_how_to_fill_it(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", cfg, "search", "dpo"]) == 0
    assert "the store is empty: run `paperboy fetch`" in capsys.readouterr().out


def test_a_fresh_store_warns_about_nothing(cfg: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        assert main(["--config", cfg, "search", "dpo"]) == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_sort_new_shows_a_date_not_a_timestamp_as_score(
    cfg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.load(cfg, {})
    store = open_store(settings)
    store.upsert_many([paper("2606.00001", "DPO at scale", published_at=NOW)], NOW)
    store.close()
    assert main(["--config", cfg, "search", "dpo", "sort:new"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith(NOW.date().isoformat()), line
    assert "score" not in line


def test_import_of_a_file_that_is_not_a_snapshot_fails(
    cfg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", cfg, "import", str(ROOT / "README.md")]) == 1
    assert "not arXiv snapshot records" in capsys.readouterr().err


SNAPSHOT_RECORD = {
    "id": "2401.00001",
    "title": "A paper",
    "abstract": "About things.",
    "authors": "Ada Lovelace",
    "categories": "cs.CL",
    "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 00:00:00 GMT"}],
    "update_date": "2024-01-02",
}


@pytest.mark.parametrize("kind", ["plain", "gz", "zip"])
def test_import_reads_json_lines_gzip_and_kaggles_zip(
    cfg: str, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip
    import zipfile

    line = (json.dumps(SNAPSHOT_RECORD) + "\n").encode()
    snapshot = tmp_path / "arxiv-metadata-oai-snapshot.json"
    if kind == "plain":
        snapshot.write_bytes(line)
    elif kind == "gz":
        snapshot = snapshot.with_name(snapshot.name + ".gz")
        snapshot.write_bytes(gzip.compress(line))
    else:
        snapshot = tmp_path / "archive.zip"
        with zipfile.ZipFile(snapshot, "w") as archive:
            archive.writestr("arxiv-metadata-oai-snapshot.json", line)
    assert main(["--config", cfg, "import", str(snapshot)]) == 0
    assert "1 added" in capsys.readouterr().out
    # A second run resumes on the same unpacked file: nothing new.
    assert main(["--config", cfg, "import", str(snapshot)]) == 0
    assert "0 added" in capsys.readouterr().out


def test_digest_for_an_unknown_platform_fails(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", cfg, "digest", "--channel", "irc:a:b", "--dry-run"]) == 2
    assert "not a platform" in capsys.readouterr().err


def test_fetch_offline_fails_fast_with_one_plain_line_per_source(
    cfg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", cfg, "fetch"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        "hf: FAILED: cannot reach 127.0.0.1: connection refused",
        "arxiv: FAILED: cannot reach 127.0.0.1: connection refused",
    ]


def test_check_config_checks_what_will_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *_: None if name == "aiohttp" else real(name)
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("PAPERBOY_DATA_DIR", "/proc/paperboy")
    monkeypatch.setenv(
        "PAPERBOY_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/x"
    )
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    assert main(["check-config"]) == 1
    out = capsys.readouterr().out
    assert "the slack extra is not installed (no aiohttp)" in out
    assert "data_dir /proc/paperboy cannot be created or written" in out
    assert "✓" not in out


def test_check_config_connects_to_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(
        "PAPERBOY_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/x"
    )
    assert main(["check-config"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("✗ cannot use the database postgresql+psycopg://nobody@127.0.0.1:")
    assert len(out.strip().splitlines()) == 1
    monkeypatch.delenv("PAPERBOY_DATABASE_URL")
    assert main(["check-config"]) == 0
    assert "(connected)" in capsys.readouterr().out


def test_a_command_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from bot.cli import main\n"
        "raise SystemExit(main(['digest', '--channel', 'slack:T1:C1']))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PAPERBOY_DATA_DIR": str(tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xapp-1",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "the slack extra is not installed" in out.stderr


def test_offline_failures_are_one_line() -> None:
    import aiohttp

    from bot.cli_checks import known_failure

    key = aiohttp.client_reqrep.ConnectionKey("discord.com", 443, True, True, None, None, None)
    exc = aiohttp.ClientConnectorError(key, socket.gaierror(-2, "Name or service not known"))
    assert known_failure(exc, Settings.load(None, {})) == (
        "cannot reach discord.com (DNS): are you offline?"
    )


def test_reindex_reports_progress(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.load(cfg, {})
    store = open_store(settings)
    store.upsert_many([paper(f"2606.{n:05d}", f"Paper {n}") for n in range(1, 51)], NOW)
    store.close()
    assert main(["--config", cfg, "reindex"]) == 0
    captured = capsys.readouterr()
    assert "reindex: 50 of 50 papers" in captured.err
    assert "search index rebuilt: 50 papers" in captured.out
