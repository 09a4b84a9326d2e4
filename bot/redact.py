"""Secrets never reach a log line, whoever logs them.

slack_sdk logs whole API responses at DEBUG, `oauth.v2.access` included (its body holds the
workspace's bot token); other libraries may log request details. `install()` puts a log-record
factory in place that rewrites every record's message before any handler sees it: Slack tokens
(`xoxb-`, `xoxp-`, `xapp-`, ...), Discord bot tokens, and every secret value registered with
`add_secrets` (the signing secret, client secret) become `[redacted]`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
_PATTERNS = [
    re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"),  # Slack bot/user/... tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),  # Slack app-level tokens
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"),  # Discord
]
_MIN_SECRET = 6  # shorter values would redact ordinary words
_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False


def add_secrets(values: Iterable[str | None]) -> None:
    """Redact these exact values too (from now on, in every log record)."""
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= _MIN_SECRET)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def install() -> None:
    """Redact every log record created from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logging module's to report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(factory)
