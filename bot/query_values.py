"""Operator values of the query language: dates for `since:` / `until:` and counts for
`upvotes:` / `stars:`. A value that cannot be read raises `QueryError` with an example."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bot.errors import QueryError

MAX_UPVOTES = 10**9
# Calendar dates in since:/until: (arXiv starts in 1991; far-future years overflow datetime).
MIN_YEAR = 1900
MAX_YEAR = 2999


@dataclass(frozen=True, slots=True)
class Upvotes:
    op: str  # >= > <= < =
    value: int

    def bounds(self) -> tuple[int | None, int | None]:
        """Inclusive (low, high)."""
        v = self.value
        return {
            ">=": (v, None),
            ">": (v + 1, None),
            "<=": (None, v),
            "<": (None, v - 1),
            "=": (v, v),
        }[self.op]

    def matches(self, upvotes: int) -> bool:
        low, high = self.bounds()
        return (low is None or upvotes >= low) and (high is None or upvotes <= high)


_RELATIVE = re.compile(r"(\d{1,5})\s*([dwmy])")
_ISO = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def parse_when(value: str, now: datetime, *, end: bool = False, name: str = "since") -> datetime:
    """`2024-06-01`, `2024-06`, `2024`, `7d`, `4w`, `3m`, `1y` -> a UTC datetime.

    A calendar date means its start for `since:` and its end (exclusive) for `until:`, so
    `until:2024-06-30` includes the 30th. Relative ages count back from `now`.
    """
    text = value.strip().lower()
    example = f"for example `{name}:2024-06-01` or `{name}:7d` (also 4w, 3m, 1y)"
    rel = _RELATIVE.fullmatch(text)
    if rel:
        n, unit = int(rel.group(1)), rel.group(2)
        try:
            if unit == "d":
                return now - timedelta(days=n)
            if unit == "w":
                return now - timedelta(weeks=n)
            return _months_back(now, n * (12 if unit == "y" else 1))
        except (OverflowError, ValueError):
            raise QueryError(f"`{name}:{value}` is too far back; {example}.") from None
    iso = _ISO.fullmatch(text)
    if iso:
        year, month, day = int(iso.group(1)), iso.group(2), iso.group(3)
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise QueryError(
                f"`{name}:{value}` is out of range: dates go from {MIN_YEAR} to {MAX_YEAR}; "
                f"{example}."
            )
        try:
            start = date(year, int(month or 1), int(day or 1))
        except ValueError:
            raise QueryError(f"`{name}:{value}` is not a real date; {example}.") from None
        if end:
            if day:
                stop = start + timedelta(days=1)
            elif month:
                stop = _add_months(start, 1)
            else:
                stop = date(year + 1, 1, 1)
            return datetime.combine(stop, time(), UTC)
        return datetime.combine(start, time(), UTC)
    if not text:
        raise QueryError(f"`{name}:` needs a date; {example}.")
    raise QueryError(f"`{name}:{value}` is not a date I understand; {example}.")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _months_back(now: datetime, months: int) -> datetime:
    day = _add_months(now.date(), -months)
    return datetime.combine(day, now.timetz())


_UPVOTES = re.compile(r"(>=|<=|=>|=<|>|<|==|=)?\s*(\d{1,10})")


def parse_upvotes(value: str) -> Upvotes:
    return parse_count(value, "upvotes")


def parse_count(value: str, name: str) -> Upvotes:
    """`>=10`, `>10`, `<=10`, `<10`, `=10` or `10` (meaning `>=`) for the operator `name`."""
    match = _UPVOTES.fullmatch(value.strip())
    if not match:
        raise QueryError(
            f"`{name}:{value}` is not a count; use a number with an optional comparison, "
            f"for example `{name}:>=10` or `{name}:<5`."
        )
    op = {"=>": ">=", "=<": "<=", "==": "=", None: ">="}.get(match.group(1), match.group(1))
    return Upvotes(op, min(int(match.group(2)), MAX_UPVOTES))
