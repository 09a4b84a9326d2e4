"""The one gate every paper passes before the store: `clean_paper(PaperIn) -> PaperIn | Rejected`.

Every source (HF, arXiv, the snapshot import, on-demand lookups, demo data) hands the store a
`bot.models.PaperIn`; `PaperStore.upsert_many` runs each through `clean_paper` first, so the
rules live here once and hold for SQLite and PostgreSQL alike:

- Text: NUL and other control characters (C0 except tab/newline, DEL, C1) and lone UTF-16
  surrogates are removed. PostgreSQL refuses NUL in text and psycopg cannot encode a surrogate;
  SQLite stores both, so without this the same record would be fine on one database and break
  a whole batch on the other.
- Lengths: every string and list is cut to a bound of our own (below). PostgreSQL's VARCHAR(n)
  raises on an over-long value while SQLite ignores n, so the bound is enforced here, the same
  on both.
- Numbers: counts are clamped into 0..2**31-1 (an INTEGER on PostgreSQL; SQLite raises past
  2**63). A version outside 1..MAX_VERSION is dropped (unknown), not clamped: the store keeps
  the highest version ever seen, so a clamped absurd value would hide every real one later.
- Dates: a publication date is made UTC; one out of range (before 1900, from 3000 on, or
  past what `datetime` holds in UTC) is dropped as unknown.
- Ids: the store's key (arXiv id without version) must look like one and fit its column
  (64 characters); otherwise the record is rejected: there is no safe way to shorten a key.

A rejected record is reported back (`Rejected(id, reason)`) so the caller can log it and count
it; the rest of the batch is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bot.ids import ARXIV_ID_RE
from bot.models import PaperIn

INT_MAX = 2**31 - 1  # PostgreSQL INTEGER
MAX_VERSION = 10_000  # arXiv asks authors to replace at most weekly: real versions are small
MAX_ID = 64  # Paper.id column
# A publication date outside these is no date (dropped, the paper kept): arXiv began in 1991.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)

MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 5_000  # collaboration papers list ~3,000 names
MAX_NAME = 300
MAX_CATEGORIES = 50
MAX_CATEGORY = 64
MAX_URL = 2_000
MAX_ORG = 300
MAX_SUMMARY = 5_000
MAX_COMMENT = 2_000  # arXiv comment and journal reference
MAX_KEYWORDS = 50
MAX_KEYWORD = 100

# C0 controls except \t \n \r, DEL, C1 controls, and UTF-16 surrogates.
_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ASCII_BAD = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def _has_bad(value: str) -> bool:
    """Whether `value` holds a character `clean_text` removes. Most text is ASCII: deleting
    the control bytes from its encoding is several times faster than a regex search."""
    if value.isascii():
        raw = value.encode("ascii")
        return len(raw.translate(None, _ASCII_BAD)) != len(raw)
    return _BAD.search(value) is not None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the store cannot take, and why (for the log and the skip count)."""

    id: str  # as the source gave it (the caller's key to the record)
    reason: str

    @property
    def shown(self) -> str:
        """The id as it may be printed: safe characters, at most 80 of them."""
        return clean_text(self.id, 80)


def clean_text(value: Any, limit: int) -> str:
    """A safe string: control characters and surrogates removed, at most `limit` characters."""
    if not isinstance(value, str):
        return ""
    text: str = value
    if _has_bad(text):
        # Paper text is whitespace-collapsed by the parsers; removing a character must not
        # leave a double space behind.
        text = " ".join(_BAD.sub("", text).split())
    if len(text) > limit:
        text = text[:limit].rstrip()
    return text


def _opt_text(value: Any, limit: int) -> str | None:
    text = clean_text(value, limit)
    return text or None


def _texts(values: Any, count: int, limit: int) -> list[str]:
    if not isinstance(values, list):
        return []
    if not values:
        return values
    # The usual list (a few clean names) is checked in one pass and kept as it is.
    if len(values) <= count and all(type(v) is str for v in values):
        joined = "".join(values)
        if not _has_bad(joined) and max(map(len, values)) <= limit and "" not in values:
            return values
    out: list[str] = []
    for value in values[:count]:
        text = clean_text(value, limit)
        if text:
            out.append(text)
    return out


def clamp_count(value: Any) -> int | None:
    """A count that fits the column: 0..INT_MAX; None when not a number at all."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return INT_MAX if value >= INT_MAX else int(value) if value > 0 else 0
    number: int = value
    return min(max(number, 0), INT_MAX)


def _version(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_VERSION else None


def _datetime(value: Any) -> datetime | None:
    """The UTC instant, or None (unknown) when it is not a datetime, or not one a paper
    can have: out of `datetime`'s range in UTC (year 9999 at UTC-5), or outside
    EARLIEST..LATEST (a later `announced_at` or `since:` sum would overflow)."""
    if not isinstance(value, datetime):
        return None
    try:
        if value.tzinfo is not UTC:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        return None
    return value if _in_range(value) else None


def _in_range(moment: datetime) -> bool:
    return EARLIEST <= moment < LATEST


def clean_paper(paper: PaperIn) -> PaperIn | Rejected:
    """`paper` with every field made safe for the store (changed in place: sources hand over
    fresh records), or why it cannot be stored. Runs for every imported paper: a record that
    is already clean (the usual one) is recognised with one scan of all its text and a few
    type checks, and returned as it is."""
    raw_id = paper.id if isinstance(paper.id, str) else repr(paper.id)
    if len(raw_id) > MAX_ID:
        return Rejected(raw_id, f"id is {len(raw_id)} characters (at most {MAX_ID} fit)")
    match = ARXIV_ID_RE.match(raw_id)
    if match is None or match.group("v"):
        return Rejected(raw_id, "id is not an arXiv id without version")
    if _clean_as_is(paper):
        return paper
    title = clean_text(paper.title, MAX_TITLE)
    if not title:
        return Rejected(raw_id, "no title")
    paper.title = title
    paper.abstract = clean_text(paper.abstract, MAX_ABSTRACT)
    paper.authors = _texts(paper.authors, MAX_AUTHORS, MAX_NAME)
    paper.categories = _texts(paper.categories, MAX_CATEGORIES, MAX_CATEGORY)
    if paper.version is not None:
        paper.version = _version(paper.version)
    if paper.published_at is not None:
        paper.published_at = _datetime(paper.published_at)
    daily = paper.hf_daily_date
    if daily is not None and (isinstance(daily, datetime) or not isinstance(daily, date)):
        paper.hf_daily_date = daily.date() if isinstance(daily, datetime) else None
    _clean_numbers_and_extras(paper)
    return paper


def _clean_numbers_and_extras(paper: PaperIn) -> None:
    for name in _COUNT_FIELDS:
        value = getattr(paper, name)
        if value is not None and not (type(value) is int and 0 <= value <= INT_MAX):
            setattr(paper, name, clamp_count(value))
    for name, limit in _OPTIONAL_TEXT:
        value = getattr(paper, name)
        if value is not None:
            setattr(paper, name, _opt_text(value, limit))
    if paper.ai_keywords:
        paper.ai_keywords = _texts(paper.ai_keywords, MAX_KEYWORDS, MAX_KEYWORD)


def _clean_as_is(paper: PaperIn) -> bool:
    """Whether every field already holds what the cleaning would leave in it: the right
    type, within its bound, and no character `clean_text` removes in any string."""
    texts: list[str] = []
    if not (_fits(paper.title, MAX_TITLE, texts) and paper.title):
        return False
    if not (_fits(paper.abstract, MAX_ABSTRACT, texts) and _scalars_as_is(paper)):
        return False
    if not (
        _list_fits(paper.authors, MAX_AUTHORS, MAX_NAME, texts)
        and _list_fits(paper.categories, MAX_CATEGORIES, MAX_CATEGORY, texts)
        and (
            not paper.ai_keywords or _list_fits(paper.ai_keywords, MAX_KEYWORDS, MAX_KEYWORD, texts)
        )
    ):
        return False
    for name, limit in _OPTIONAL_TEXT:
        value = getattr(paper, name)
        if value is not None and not (_fits(value, limit, texts) and value):
            return False
    joined = "".join(texts)
    # Every character `clean_text` removes is unprintable; most text is all printable.
    return joined.isprintable() or not _has_bad(joined)


def _fits(value: Any, limit: int, texts: list[str]) -> bool:
    if type(value) is not str or len(value) > limit:
        return False
    texts.append(value)
    return True


def _list_fits(values: Any, count: int, limit: int, texts: list[str]) -> bool:
    if type(values) is not list or len(values) > count:
        return False
    for value in values:
        if type(value) is not str or not value or len(value) > limit:
            return False
    texts.extend(values)
    return True


def _scalars_as_is(paper: PaperIn) -> bool:
    version, published, daily = paper.version, paper.published_at, paper.hf_daily_date
    if version is not None and not (type(version) is int and 1 <= version <= MAX_VERSION):
        return False
    if published is not None and not (
        type(published) is datetime and published.tzinfo is UTC and _in_range(published)
    ):
        return False
    if daily is not None and type(daily) is not date:
        return False
    for name in _COUNT_FIELDS:
        value = getattr(paper, name)
        if value is not None and not (type(value) is int and 0 <= value <= INT_MAX):
            return False
    return True


_COUNT_FIELDS = ("upvotes", "comments", "github_stars")
_OPTIONAL_TEXT = (
    ("github_repo", MAX_URL),
    ("project_page", MAX_URL),
    ("organization", MAX_ORG),
    ("ai_summary", MAX_SUMMARY),
    ("arxiv_comment", MAX_COMMENT),
    ("journal_ref", MAX_COMMENT),
)
