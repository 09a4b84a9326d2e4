"""`paperboy check-config` and what every command checks first: the settings, the optional
extras, the data directory and the database, each problem in one line with what to do; and
`known_failure`, which turns the machine's and the configuration's failures into one line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bot.config import Settings, redact_url
from bot.errors import ConfigError

# Which extra installs a missing module, and the command to install it.
EXTRAS = {
    "slack_bolt": "slack",
    "slack_sdk": "slack",
    "aiohttp": "slack",
    "discord": "discord",
    "psycopg": "postgres",
    "psycopg2": "postgres",
}


def install_hint(extra: str) -> str:
    return f"pip install 'paperboy[{extra}]' (in a clone: .venv/bin/pip install -e '.[{extra}]')"


def known_failure(exc: BaseException, settings: Settings) -> str | None:
    """One line for a failure that is the machine's or the configuration's, not a bug."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from bot.reachability import network_reason

    if isinstance(exc, ModuleNotFoundError):
        top = (exc.name or "").split(".")[0]
        extra = EXTRAS.get(top)
        if extra is None:
            return None
        return f"the {extra} extra is not installed (no module {top}): {install_hint(extra)}"
    if isinstance(exc, NoSuchModuleError | ArgumentError):
        return f"[database] url {redact_url(settings.database_url)} is not usable: {exc}"
    if isinstance(exc, DBAPIError):
        first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else ""
        return f"cannot use the database {redact_url(settings.database_url)}: {first}"
    reason = network_reason(exc)
    if reason is not None:
        host = _host_of(exc)
        where = f"reach {host}" if host else "reach the network"
        hint = ": are you offline?" if reason in ("DNS", "network", "timed out") else ""
        return f"cannot {where} ({reason}){hint}"
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError):
        return f"{exc.strerror}: {exc.filename} (check [storage] data_dir / PAPERBOY_DATA_DIR)"
    return None


def _host_of(exc: BaseException) -> str | None:
    host = getattr(exc, "host", None)
    if isinstance(host, str):
        return host
    request = getattr(exc, "_request", None) or getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return getattr(url, "host", None) if url is not None else None


def cmd_check_config(settings: Settings, _args: argparse.Namespace) -> int:
    """Check what `paperboy run` will use: settings, extras, data directory, database, index."""
    problems = runtime_problems(settings, connect=True)
    for problem in problems:
        print(f"✗ {problem}")
    if problems:
        return 1
    print(f"✓ configuration is valid; platforms: {', '.join(settings.platforms())}")
    print(f"✓ database: {redact_url(settings.database_url)} (connected)")
    print(f"✓ data directory: {settings.data_dir} (writable)")
    print(f"  search index: {_index_state(settings)}")
    return 0


def runtime_problems(settings: Settings, *, connect: bool) -> list[str]:
    """Everything that would stop `paperboy run`, each in one line with what to do."""
    problems = list(settings.problems())
    problems += missing_extras(settings)
    data_dir = _data_dir_problem(settings.data_dir)
    if data_dir:
        problems.append(data_dir)
    if connect and not any("postgres extra" in p for p in problems) and not data_dir:
        database = _database_problem(settings)
        if database:
            problems.append(database)
    return problems


def missing_extras(settings: Settings) -> list[str]:
    """The optional dependencies the configured platforms and database need but lack."""
    import importlib.util

    needs: dict[str, list[str]] = {}
    platforms = settings.platforms()
    if "slack" in platforms:
        needs["slack"] = ["slack_bolt", "slack_sdk", "aiohttp"]
    if "discord" in platforms:
        needs["discord"] = ["discord"]
    if settings.database_url.startswith("postgresql"):
        needs["postgres"] = ["psycopg"]
    out = []
    for extra, modules in needs.items():
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if absent:
            why = {
                "slack": "Slack tokens are set",
                "discord": "DISCORD_TOKEN is set",
                "postgres": "[database] url is PostgreSQL",
            }[extra]
            out.append(
                f"{why} but the {extra} extra is not installed (no {', '.join(absent)}): "
                f"{install_hint(extra)}"
            )
    return out


def _data_dir_problem(path: Path) -> str | None:
    """Why the data directory cannot hold the database and index, or None: it is created if
    missing and a file is written and removed in it, as the bot will."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".paperboy-check-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return (
            f"[storage] data_dir {path} cannot be created or written ({reason}); "
            'choose a directory this user may write, e.g. data_dir = "./data"'
        )
    return None


def _database_problem(settings: Settings) -> str | None:
    from sqlalchemy import create_engine, text

    url = settings.database_url
    args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    try:
        engine = create_engine(url, connect_args=args)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - every driver error becomes one line
        known = known_failure(exc, settings)
        return known or f"cannot use the database {redact_url(url)}: {type(exc).__name__}"
    return None


def _index_state(settings: Settings) -> str:
    from bot.index import STATE_FILE

    path = settings.index_dir
    if not path.exists() or not any(path.iterdir()):
        return f"{path} (built on first start)"
    if not (path / STATE_FILE).exists():
        return f"{path} (not paperboy's or outdated: rebuilt from the store on start)"
    return f"{path} (present; caught up with the store on start)"


def fail_on_problems(settings: Settings) -> None:
    problems = runtime_problems(settings, connect=False)
    if problems:
        raise ConfigError("\n".join(problems) + "\n(run `paperboy check-config`)")
