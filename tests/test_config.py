"""Settings: the example file loads, secrets come only from the given environment, and every
problem names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_with_defaults() -> None:
    settings = Settings.load(ROOT / "config.example.toml", {})
    assert settings == Settings.load(None, {})  # the example documents the defaults
    assert settings.platforms() == ["console"]
    assert settings.database_url.startswith("sqlite:///")


def test_every_settings_key_is_documented_in_the_example() -> None:
    text = (ROOT / "config.example.toml").read_text()
    defaults = Settings.load(None, {}).model_dump(exclude={"secrets"})

    def keys(prefix: str, value: object) -> list[str]:
        if isinstance(value, dict):
            return [k for name, v in value.items() for k in keys(f"{prefix}.{name}", v)]
        return [prefix]

    for key in keys("", defaults):
        section, _, name = key.strip(".").rpartition(".")
        assert f"[{section}]" in text, section
        assert f"{name} =" in text, key


def test_secrets_come_from_the_environment_mapping() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "DISCORD_TOKEN": "d"}
    settings = Settings.load(None, env)
    assert settings.platforms() == ["slack", "discord"]
    assert settings.problems() == []
    assert "xoxb-1" not in settings.model_dump_json()


def test_database_url_env_override() -> None:
    url = "postgresql+psycopg://bot@db:5432/paperboy"
    assert Settings.load(None, {"PAPERBOY_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    "toml,key",
    [
        ('[slack]\nmode = "websocket"\n', "[slack] mode"),
        ('[digest]\ntimezone = "Mars/Olympus"\n', "[digest] timezone"),
        ('[digest]\ntime = "9am"\n', "[digest] time"),
        ("[search]\nresults = 0\n", "[search] results"),
        ('[sources.arxiv]\napi_urll = "x"\n', "[sources.arxiv] api_urll"),
        ('[database]\nurl = "mysql://x"\n', "[database] url"),
    ],
)
def test_wrong_keys_are_named(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        Settings.load(path, {})
    assert key in str(err.value)


def test_missing_and_broken_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[slack\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(bad, {})


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": "token", "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_CLIENT_ID": "1", "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_CLIENT_SECRET"),
    ],
)
def test_check_config_names_the_missing_secret(
    env: dict[str, str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "SLACK_SIGNING_SECRET",
        "DISCORD_TOKEN",
        "PAPERBOY_CONFIG",
    ):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert main(["check-config"]) == 1
    assert needle in capsys.readouterr().out


def test_check_config_passes_on_the_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_TOKEN", "SLACK_CLIENT_ID"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--config", str(ROOT / "config.example.toml"), "check-config"]) == 0
    assert "configuration is valid" in capsys.readouterr().out


def test_bad_config_file_exits_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[slack]\nmode = "carrier-pigeon"\n')
    assert main(["--config", str(path), "check-config"]) == 2
    assert "[slack] mode" in capsys.readouterr().err
