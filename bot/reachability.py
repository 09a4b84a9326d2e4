"""Why a host could not be reached, in words an operator understands.

Every client we use (httpx for the sources, aiohttp inside slack-sdk and discord.py) ends a
failed connection in the same operating-system errors, somewhere in the exception chain. One
function reads that chain, so the runtime, the sources and the CLI say "cannot reach Slack
(DNS)" the same way, and the sources can tell a failure worth retrying (a timeout, a reset)
from one that will fail again at once (no DNS, nothing listening).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        # aiohttp keeps the OS error as `os_error`; httpx/httpcore chain it as the cause.
        inner = getattr(current, "os_error", None)
        if isinstance(inner, BaseException) and id(inner) not in seen:
            yield inner
            seen.add(id(inner))
        current = current.__cause__ or current.__context__


def network_reason(exc: BaseException) -> str | None:
    """ "DNS", "connection refused", "TLS", "timed out" or "network" when `exc` is a failure to
    reach a host; None when it is something else (an HTTP status, a bug)."""
    reasons = []
    for item in _chain(exc):
        if isinstance(item, socket.gaierror):
            return "DNS"
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, ssl.SSLError):
            reasons.append("TLS")
        elif isinstance(item, TimeoutError):
            reasons.append("timed out")
        elif isinstance(item, OSError):
            reasons.append("network")
        name = type(item).__name__
        if name in {"ConnectTimeout", "ConnectionTimeoutError", "ServerTimeoutError"}:
            reasons.append("timed out")
        elif name in {"ConnectError", "ClientConnectorError", "ClientConnectionError"}:
            reasons.append("network")
    return reasons[0] if reasons else None


def is_unreachable_now(exc: BaseException) -> bool:
    """A failure that repeats at once if retried at once (no DNS answer, nothing listening):
    retrying it five times only makes an offline user wait."""
    return network_reason(exc) in {"DNS", "connection refused"}


def describe(host: str, exc: BaseException) -> str:
    """`cannot reach huggingface.co (DNS): are you offline?` and the like."""
    reason = network_reason(exc)
    if reason == "DNS":
        return f"cannot reach {host} (DNS): are you offline?"
    if reason == "connection refused":
        return f"cannot reach {host}: connection refused"
    if reason is not None:
        return f"cannot reach {host} ({reason})"
    return f"{host} failed: {type(exc).__name__}"


class NetworkOneLiner(logging.Filter):
    """Platform clients log a full traceback for every failed reconnect (slack-sdk's Socket
    Mode client once per ping interval, discord.py's gateway once per backoff step) while the
    network is down: such a record becomes one plain line, "cannot reach Discord (DNS):
    reconnecting". Records about anything else pass unchanged."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        reason = network_reason(exc) if exc is not None else None
        if reason is not None:
            record.msg, record.args = "cannot reach %s (%s): reconnecting", (self.label, reason)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
