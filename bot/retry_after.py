"""How long a rate-limited server asks us to wait: the one reading of `Retry-After` (seconds
or an HTTP date) and of the `RateLimit` header's `t=`, for the sources and every adapter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, overload

_RATELIMIT_T = re.compile(r"(?:^|[;,\s])t=(\d+(?:\.\d+)?)")
MAX_WAIT = 24 * 3600.0  # a server asking for more is read as asking for a day


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A header's value whatever the mapping's case rules (httpx, aiohttp, plain dicts of
    strings or of lists of strings, as slack_sdk keeps them)."""
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == name:
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            return None if value is None else str(value).strip()
    return None


def _parse(headers: Mapping[str, Any] | None, now: datetime | None) -> float | None:
    value = _header(headers, "retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return (when - (now or datetime.now(UTC))).total_seconds()
    limit = _header(headers, "ratelimit")
    if limit:
        match = _RATELIMIT_T.search(limit)
        if match:
            return float(match.group(1))
    return None


@overload
def retry_after(
    headers: Mapping[str, Any] | None,
    *,
    default: float,
    minimum: float = 0.0,
    now: datetime | None = None,
) -> float: ...


@overload
def retry_after(
    headers: Mapping[str, Any] | None,
    *,
    default: None = None,
    minimum: float = 0.0,
    now: datetime | None = None,
) -> float | None: ...


def retry_after(
    headers: Mapping[str, Any] | None,
    *,
    default: float | None = None,
    minimum: float = 0.0,
    now: datetime | None = None,
) -> float | None:
    """Seconds to wait, at least `minimum` and at most a day; `default` when the headers say
    nothing usable (missing, empty, garbage or NaN)."""
    seconds = _parse(headers, now)
    if seconds is None or seconds != seconds:  # NaN
        return default
    return min(max(seconds, minimum), MAX_WAIT)
