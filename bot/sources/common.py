"""Text, id and date normalisation shared by every source parser.

Parsers are pure: bytes or text in, `PaperIn` out. These helpers hold the rules that all of
them follow (see ../shared/reference/data-sources.md §3): whitespace collapsed, TeX kept,
HTML entities unescaped only by the parser of a format that escapes them, ids through
`bot.ids.parse_arxiv_id` with the version kept apart, datetimes aware UTC.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bot.errors import SourceError
from bot.ids import ArxivId, parse_arxiv_id

logger = logging.getLogger("bot.sources")

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def collapse(text: Any) -> str:
    """Whitespace runs (arXiv's `\\n  ` line wraps included) become one space, ends trimmed.

    The same result as `" ".join(text.split())`, about 4x faster on the usual abstract (one
    wrap per line, no other whitespace): every whitespace character `str.split` knows other
    than space is non-printable, so a printable text without double spaces is already done.
    """
    if not isinstance(text, str):
        return ""
    flat = text.replace("\n", " ").strip()
    if "  " in flat or not flat.isprintable():
        return " ".join(flat.split())
    return flat


# While a refresh fetches one source, the items its parsers had to leave out (bad data, not
# a withdrawn paper) are collected here, so the source's state can count them.
_COUNTED: ContextVar[list[str] | None] = ContextVar("paperboy_skipped_items", default=None)


def skip(source: str, reason: str, item: Any = None, *, bad: bool = True) -> None:
    """Log why one item of a body was left out (the rest of the body is still used).

    `bad=False` for an item left out on purpose (a withdrawn paper): it is not counted."""
    hint = ""
    if item is not None:
        hint = " " + repr(item)[:120]
    logger.warning("%s: skipped an item: %s%s", source, reason, hint)
    bucket = _COUNTED.get()
    if bad and bucket is not None:
        bucket.append(reason[:200])


@contextmanager
def counting_skips() -> Iterator[list[str]]:
    """Collect the reasons of the items parsers skip inside this block (this task and the
    threads it starts with `asyncio.to_thread`, which copy the context)."""
    bucket: list[str] = []
    token = _COUNTED.set(bucket)
    try:
        yield bucket
    finally:
        _COUNTED.reset(token)


class SkipLog:
    """For bulk input: the first `limit` skipped items are logged, the rest only counted."""

    def __init__(self, source: str, limit: int = 20) -> None:
        self.source = source
        self.limit = limit
        self.count = 0

    def __call__(self, reason: str, item: Any = None) -> None:
        self.count += 1
        if self.count <= self.limit:
            skip(self.source, reason, item)
        elif self.count == self.limit + 1:
            logger.warning("%s: more items skipped; counting them without logging", self.source)


def arxiv_id(value: Any) -> ArxivId | None:
    """The id in an id string, `oai:arXiv.org:` identifier or arxiv.org / hf.co URL."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower().startswith("oai:arxiv.org:"):
        text = text[len("oai:arxiv.org:") :]
    if text.startswith("http://"):
        text = "https://" + text[len("http://") :]
    return parse_arxiv_id(text)


def parse_iso(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (`2026-06-12T00:00:00.000Z`, `...-04:00`) as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_iso_date(value: Any) -> date | None:
    """The calendar date of an ISO timestamp as written (HF's list dates are UTC midnights)."""
    parsed = parse_iso(value)
    return parsed.date() if parsed else None


def parse_rfc822(value: Any) -> datetime | None:
    """`Mon, 27 Apr 2026 00:00:00 -0400` or `Mon, 2 Apr 2007 19:18:42 GMT` as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    parts = value.split()
    # Fast path for the fixed GMT form of the Kaggle snapshot (a million of these).
    if len(parts) == 6 and parts[5] == "GMT" and parts[2] in _MONTHS:
        try:
            hh, mm, ss = parts[4].split(":")
            return datetime(
                int(parts[3]),
                _MONTHS[parts[2]],
                int(parts[1]),
                int(hh),
                int(mm),
                int(ss),
                tzinfo=UTC,
            )
        except ValueError:
            return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_int(value: Any) -> int | None:
    """An integer count (HF types them as float in its OpenAPI); None when absent or odd."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def load_json(body: str | bytes, source: str) -> Any:
    """Decode a JSON body; a body that is not JSON at all (truncated, HTML) is a SourceError."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        preview = body[:80] if isinstance(body, str) else body[:80].decode("utf-8", "replace")
        raise SourceError(f"{source}: the response is not valid JSON ({exc}): {preview!r}") from exc


def split_authors(text: str) -> list[str]:
    """`A, B and C` -> [A, B, C]; used where a format joins all authors in one string."""
    text = collapse(text)
    if not text:
        return []
    names: list[str] = []
    for part in text.split(","):
        for name in part.split(" and "):
            name = name.strip()
            if name:
                names.append(name)
    return names
