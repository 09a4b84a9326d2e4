"""Settings: non-secret values from a TOML file, secrets only from the environment.

`Settings.load(path, environ)` takes the environment as a mapping it is given, so tests never
leak the machine's variables in. Every problem is reported with the exact key that is wrong.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from bot import redact
from bot.errors import ConfigError

CONFIG_ENV = "PAPERBOY_CONFIG"
# Secrets and deployment overrides read from the environment, by setting name.
SECRET_ENV = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_client_id": "SLACK_CLIENT_ID",
    "slack_client_secret": "SLACK_CLIENT_SECRET",
    "discord_token": "DISCORD_TOKEN",
}
DATABASE_URL_ENV = "PAPERBOY_DATABASE_URL"
DATA_DIR_ENV = "PAPERBOY_DATA_DIR"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StorageSettings(_Section):
    data_dir: Path | None = None  # default: the user's data directory


class DatabaseSettings(_Section):
    url: str | None = None  # default: sqlite:///<data_dir>/paperboy.db

    def __repr_args__(self) -> Any:
        # The URL may carry a password: reprs (and so logs and tracebacks) show it redacted.
        yield "url", redact_url(self.url) if self.url else None

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, value: str | None) -> str | None:
        if value is None or value.startswith(("sqlite://", "postgresql")):
            return value
        raise ValueError("must start with sqlite:/// or postgresql+psycopg://")


class SearchSettings(_Section):
    results: int = Field(default=5, ge=1, le=20)


class HuggingFaceSettings(_Section):
    enabled: bool = True
    base_url: str = "https://huggingface.co"
    refresh_days: int = Field(default=3, ge=0, le=30)
    # Recent papers whose `/api/papers/{id}` each refresh reads again (code links, stars).
    recheck_papers: int = Field(default=30, ge=0, le=500)


class ArxivSettings(_Section):
    enabled: bool = True
    api_url: str = "https://export.arxiv.org/api/query"
    feed_url: str = "https://rss.arxiv.org/atom"
    categories: list[str] = Field(default_factory=lambda: ["cs.CL", "cs.LG", "cs.AI"])
    min_interval_seconds: float = Field(default=3.0, ge=0)
    # Recent papers looked up again per refresh, in one API request (versions, comments).
    recheck_papers: int = Field(default=100, ge=0, le=200)


class SourcesSettings(_Section):
    huggingface: HuggingFaceSettings = Field(default_factory=HuggingFaceSettings)
    arxiv: ArxivSettings = Field(default_factory=ArxivSettings)
    timeout_seconds: float = Field(default=20.0, gt=0)
    retries: int = Field(default=4, ge=0, le=10)
    max_response_mb: int = Field(default=32, ge=1, le=1024)  # a bigger response is refused
    recheck_days: int = Field(default=14, ge=0, le=60)  # how recent a rechecked paper is


class RefreshSettings(_Section):
    interval_minutes: int = Field(default=60, ge=1)


class DigestSettings(_Section):
    schedule: Literal["daily", "weekdays"] = "weekdays"  # set by a channel's first subscribe
    time: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"
    max_papers: int = Field(default=10, ge=1, le=50)
    tick_seconds: int = Field(default=30, ge=5, le=300)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from exc
        return value


class SlackSettings(_Section):
    mode: Literal["socket", "http"] = "socket"
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    api_base_url: str = "https://slack.com/api/"
    command: str = "/papers"
    # HTTP mode: processes answering on the one port (SO_REUSEPORT), one per core is the most
    # that helps; only the first runs the scheduler and writes the search index.
    http_workers: int = Field(default=1, ge=1, le=64)


class DiscordSettings(_Section):
    shards: int | None = Field(default=None, ge=1)
    guild_id: int | None = None  # sync commands to one guild (instant) instead of globally
    manage_permission: bool = True  # subscribe/schedule need Manage Channels


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one object per line, for log shippers


class MetricsSettings(_Section):
    """`GET /healthz` and Prometheus `GET /metrics` while `paperboy run` runs."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(default=9464, ge=0, le=65535)  # 0: any free port


class Secrets(BaseModel):
    """Tokens as `SecretStr`: a repr, a log line or an error message shows `**********`;
    code that needs the value asks for it with `reveal`."""

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_client_id: str | None = None  # public (it is in the install URL)
    slack_client_secret: SecretStr | None = None
    discord_token: SecretStr | None = None


def reveal(secret: SecretStr | None) -> str | None:
    """The value of a secret, for the one call that sends it where it belongs."""
    return secret.get_secret_value() if secret is not None else None


_URL_USERINFO = re.compile(r"(?<=://)([^/@:]*):[^/@]*@")
_URL_SECRET_PARAM = re.compile(
    r"([?&](?:password|passwd|pwd|pass|secret|token|sslpassword)=)[^&#]*", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """A database URL safe to print: the password in `user:password@` and in query
    parameters such as `?password=` replaced by `***`."""
    url = _URL_USERINFO.sub(lambda m: f"{m.group(1)}:***@", url)
    return _URL_SECRET_PARAM.sub(lambda m: f"{m.group(1)}***", url)


class Settings(_Section):
    storage: StorageSettings = Field(default_factory=StorageSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)
    refresh: RefreshSettings = Field(default_factory=RefreshSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)

    @property
    def data_dir(self) -> Path:
        return self.storage.data_dir or Path(platformdirs.user_data_dir("paperboy"))

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'paperboy.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def platforms(self) -> list[str]:
        """The platforms whose tokens are configured; the console when there are none."""
        found = []
        if self.secrets.slack_bot_token or self.secrets.slack_client_id:
            found.append("slack")
        if self.secrets.discord_token:
            found.append("discord")
        return found or ["console"]

    def problems(self) -> list[str]:
        """Settings that load but cannot work together, each naming its key."""
        issues = []
        s = self.secrets
        if "slack" in self.platforms():
            if self.slack.mode == "socket" and not s.slack_app_token:
                issues.append(
                    'SLACK_APP_TOKEN is missing: [slack] mode = "socket" needs an app-level '
                    'token (xapp-...), or set [slack] mode = "http"'
                )
            if self.slack.mode == "http" and not s.slack_signing_secret:
                issues.append('SLACK_SIGNING_SECRET is missing: [slack] mode = "http" needs it')
            bot_token, app_token = reveal(s.slack_bot_token), reveal(s.slack_app_token)
            if bot_token and not bot_token.startswith("xoxb-"):
                issues.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
            if app_token and not app_token.startswith("xapp-"):
                issues.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
            if s.slack_client_id and not s.slack_client_secret:
                issues.append("SLACK_CLIENT_SECRET is missing: SLACK_CLIENT_ID is set (OAuth)")
            if self.slack.http_workers > 1 and self.slack.mode != "http":
                issues.append(
                    f"[slack] http_workers = {self.slack.http_workers} needs "
                    '[slack] mode = "http" (Socket Mode is one connection per app)'
                )
        return issues

    @classmethod
    def load(
        cls, path: str | Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Load settings from `path` (or $PAPERBOY_CONFIG) and secrets from `environ`."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        chosen = path or env.get(CONFIG_ENV)
        if chosen:
            file = Path(chosen)
            try:
                raw = tomllib.loads(file.read_text(encoding="utf-8"))
            except FileNotFoundError as exc:
                raise ConfigError(f"config file {file} does not exist") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {file} is not valid TOML: {exc}") from exc
        if env.get(DATABASE_URL_ENV):
            raw.setdefault("database", {})["url"] = env[DATABASE_URL_ENV]
        if env.get(DATA_DIR_ENV):
            raw.setdefault("storage", {})["data_dir"] = env[DATA_DIR_ENV]
        raw["secrets"] = {name: env[var] for name, var in SECRET_ENV.items() if env.get(var)}
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None
        # From here on no log record shows one of these values (libraries log API bodies).
        redact.install()
        redact.add_secrets(str(raw["secrets"][name]) for name in raw["secrets"])
        return settings


def _describe(exc: ValidationError) -> str:
    """Each problem in plain words: the key, what it must be, an example, what it got."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        key = f"[{'.'.join(loc[:-1])}] {loc[-1]}" if len(loc) > 1 else loc[0] if loc else "?"
        if not loc:
            lines.append(f"the file: {err['msg']}")
            continue
        message = _plain(err, loc)
        lines.append(f"{key}: {message}")
    return "\n".join(lines)


# What a value must be, by pydantic error type, in words (with an example where it helps).
_EXPECTED = {
    "int_parsing": "must be a whole number, e.g. 30",
    "int_type": "must be a whole number, e.g. 30",
    "int_from_float": "must be a whole number, e.g. 30",
    "float_parsing": "must be a number, e.g. 2.5",
    "float_type": "must be a number, e.g. 2.5",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": 'must be text in quotes, e.g. "value"',
    "list_type": 'must be a list, e.g. ["cs.CL", "cs.LG"]',
    "path_type": 'must be a directory path in quotes, e.g. "/var/lib/paperboy"',
    "model_type": "must be a section (a [table] of keys)",
    "dict_type": "must be a section (a [table] of keys)",
}
# Keys whose pattern a regex says nothing about to a person.
_PATTERN_HELP = {"time": "must be a 24-hour time HH:MM, e.g. 09:00"}


def _plain(err: Any, loc: list[str]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) and got is not None else ""
    if kind == "extra_forbidden":
        return "unknown key" + _did_you_mean(loc) + " (config.example.toml lists every key)"
    if kind == "missing":
        return "missing"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}{shown}"
    if kind == "string_pattern_mismatch":
        return _PATTERN_HELP.get(loc[-1], "is not in the expected form") + shown
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, bound = bounds[kind]
        return f"must be {words} {ctx.get(bound)}{shown}"
    if kind in _EXPECTED:
        return _EXPECTED[kind] + shown
    if kind == "value_error":
        return str(ctx.get("error") or err["msg"]).removeprefix("Value error, ")
    return str(err["msg"]) + shown


def _did_you_mean(loc: list[str]) -> str:
    """`; did you mean time?` for `[digest] tme`, from the keys that section has."""
    model: Any = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    names = [name for name in model.model_fields if name != "secrets"]
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
