"""The `paperboy` command: run, demo, search, reindex, check-config and the operator tools.

The subcommands live by concern: `cli_run` (the platforms), `cli_store` (search, reindex,
fetch, import), `cli_checks` (check-config and one-line failures), `demo`; `cli_parser` wires
them to the command line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.cli_checks import known_failure
from bot.cli_parser import build_parser
from bot.config import Settings
from bot.errors import BotError, ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.load(args.config)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    _log_to_stderr(settings)
    try:
        return int(args.func(settings, args) or 0)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Failures an operator can fix get one line and an exit code; anything else is a
        # bug, and its traceback is what a bug report needs.
        known = known_failure(exc, settings)
        if known is None:
            raise
        print(f"error: {known}", file=sys.stderr)
        return 1


def _log_to_stderr(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.logging.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, settings.logging.level), handlers=[handler])


class JsonFormatter(logging.Formatter):
    """One JSON object per line (`[logging] format = "json"`), for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
