"""No repr, log line or error message shows a secret."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bot import redact
from bot.cli import main
from bot.config import Settings, redact_url, reveal

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-abcdefSECRET",
    "SLACK_APP_TOKEN": "xapp-1-A111-333-appSECRET",
    "SLACK_SIGNING_SECRET": "signing-secret-value-0042",
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_CLIENT_SECRET": "client-secret-value-0042",
    "DISCORD_TOKEN": "discord-token-value-0042",
    "PAPERBOY_DATABASE_URL": "postgresql+psycopg://bot:pg-pass-0042@db:5432/paperboy"
    "?sslmode=require&password=pg-pass-0042",
}
SECRET_VALUES = [v for k, v in ENV.items() if k != "SLACK_CLIENT_ID" and "DATABASE" not in k]


def test_settings_repr_and_dump_show_no_secret() -> None:
    settings = Settings.load(None, ENV)
    shown = repr(settings) + str(settings) + repr(settings.secrets) + f"{settings.database!r}"
    for value in [*SECRET_VALUES, "pg-pass-0042"]:
        assert value not in shown, value
    dumped = settings.model_dump_json() + str(settings.secrets.model_dump())
    for value in SECRET_VALUES:
        assert value not in dumped, value
    assert reveal(settings.secrets.discord_token) == ENV["DISCORD_TOKEN"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://bot:hunter2@db:5432/p", "postgresql+psycopg://bot:***@db:5432/p"),
        (
            "postgresql+psycopg://db/p?user=bot&password=hunter2&sslmode=require",
            "postgresql+psycopg://db/p?user=bot&password=***&sslmode=require",
        ),
        ("postgresql+psycopg://db/p?PASSWORD=hunter2", "postgresql+psycopg://db/p?PASSWORD=***"),
        (
            "postgresql+psycopg://bot:p%40ss@db/p?password=x",
            "postgresql+psycopg://bot:***@db/p?password=***",
        ),
        ("sqlite:////data/paperboy.db", "sqlite:////data/paperboy.db"),
    ],
)
def test_database_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_check_config_shows_no_database_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for key, value in ENV.items():
        if key in ("PAPERBOY_DATABASE_URL",):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    main(["check-config"])
    out = capsys.readouterr()
    assert "pg-pass-0042" not in out.out + out.err
    assert "password=***" in out.out


def test_a_logged_token_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    Settings.load(None, ENV)  # registers the secrets and installs the redaction
    log = logging.getLogger("slack_sdk.web.async_base_client")
    with caplog.at_level(logging.DEBUG):
        log.debug("body: %s", {"access_token": "xoxb-9-9-newly-issued", "ok": True})
        log.debug("secret %s and %s", ENV["SLACK_SIGNING_SECRET"], ENV["DISCORD_TOKEN"])
    for value in ["xoxb-9-9-newly-issued", ENV["SLACK_SIGNING_SECRET"], ENV["DISCORD_TOKEN"]]:
        assert value not in caplog.text
    assert caplog.text.count(redact.REDACTED) == 3


def test_slack_and_discord_flows_log_no_secret_at_debug(tmp_path: Path) -> None:
    """The whole Slack and Discord adapter test flows (commands, buttons, HTTP mode, OAuth
    install, digests) at DEBUG: no secret they use is in any log line."""
    log = tmp_path / "debug.log"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "tests/adapters/test_slack.py",
            "tests/adapters/test_discord.py",
            f"--log-file={log}",
            "--log-file-level=DEBUG",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    text = log.read_text()
    assert "slack_sdk" in text and "DEBUG" in text  # the libraries did log at DEBUG
    from tests.adapters.test_slack import SECRET

    for value in [
        "xoxb-test",
        "xapp-test",
        SECRET,
        "client-secret",
        "xoxb-T0001",
        "xoxb-T0002",
        "t0ken",
    ]:
        assert value not in text, value


def test_check_config_refuses_a_data_directory_it_cannot_create(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(blocker / "data"))
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    assert main(["check-config"]) == 1
    out = capsys.readouterr().out
    assert "data_dir" in out and "cannot be created or written" in out
