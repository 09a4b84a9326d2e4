"""Paper rows as the store writes them: a new row, a merge into a stored one, and the bulk
INSERT bound straight through the database driver.

`PaperStore` (bot/store.py) decides what to write; this module only shapes the values. The
bulk INSERT of new papers is the import's hottest statement, so its rows are bound as the
driver takes them (JSON already text, datetimes already in the column's storage format on
SQLite), without SQLAlchemy's per-parameter processing: the same values SQLAlchemy would
bind, produced once per row (tests/test_store.py reads them back through the models).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

import orjson

from bot.announce import announced, daily_papers_moment, own_moment
from bot.models import Paper, PaperIn
from bot.times import aware

Row = dict[str, Any]

# Fields where a newer value from any source replaces the old one (counts that grow).
_COUNTS = ("upvotes", "comments", "github_stars")
_COLUMNS = tuple(c.name for c in Paper.__table__.columns)  # type: ignore[attr-defined]
_PER_VERSION = ("arxiv_comment", "journal_ref")
_JSON = ("authors", "categories", "ai_keywords", "sources")
_DATETIMES = (
    "published_at",
    "first_seen_at",
    "updated_at",
    "announced_at",
    "hf_checked_at",
    "arxiv_checked_at",
)


def new_row(paper: PaperIn, now: datetime, mark: int) -> Row:
    """The row of a paper the store has not seen; unknown fields take the column defaults."""
    row: Row = {
        "id": paper.id,
        "version": paper.version,
        "title": paper.title,
        "abstract": paper.abstract or "",
        "authors": paper.authors or [],
        "categories": paper.categories or [],
        "published_at": paper.published_at,
        "hf_daily_date": paper.hf_daily_date,
        "upvotes": paper.upvotes or 0,
        "comments": paper.comments or 0,
        "github_repo": paper.github_repo or None,
        "github_stars": paper.github_stars,
        "project_page": paper.project_page or None,
        "organization": paper.organization or None,
        "ai_summary": paper.ai_summary or None,
        "ai_keywords": paper.ai_keywords or [],
        "arxiv_comment": paper.arxiv_comment or None,
        "journal_ref": paper.journal_ref or None,
        "sources": [paper.source],
        "first_seen_at": now,
        "updated_at": now,
        "announced_at": announced(own_moment(paper.published_at, paper.hf_daily_date), now),
        "change_seq": mark,
        "hf_checked_at": None,
        "arxiv_checked_at": None,
    }
    return row


def merged_row(old: Row, values: Row, source: str, now: datetime) -> Row:
    """`old` with what `values` knows merged in: counts take the newer value, versions the
    higher, the Daily Papers date the first; other fields fill gaps or take longer text.

    A Daily Papers listing later than the paper's announcement announces it again (a paper
    that trends on HF weeks after arXiv is new on its HF day); other sources never move it.
    """
    new = dict(old)
    listed = values.get("hf_daily_date")
    before = aware(old.get("announced_at"))
    if listed is not None and (before is None or daily_papers_moment(listed) > before):
        new["announced_at"] = announced(daily_papers_moment(listed), now)
    if _older(values.get("version"), old.get("version")):
        # arXiv's comment changes only with a new version: an older one's is out of date.
        values = {k: v for k, v in values.items() if k not in _PER_VERSION or not old.get(k)}
    for name, value in values.items():
        new[name] = _merged_value(name, value, new.get(name))
    if source not in new["sources"]:
        new["sources"] = [*new["sources"], source]
    return new


def _older(version: Any, stored: Any) -> bool:
    return isinstance(version, int) and isinstance(stored, int) and version < stored


def _merged_value(name: str, value: Any, current: Any) -> Any:
    if name in _COUNTS or not current:
        return value
    if name == "version":
        return max(value, current)
    if name == "hf_daily_date":
        return current
    if name == "published_at":
        # The earliest date wins: arXiv's v1 date precedes any announcement or HF list
        # date, and two sources then agree instead of overwriting each other every refresh.
        return value if value < aware(current) else current
    if name in ("title", "abstract"):
        # Keep the fuller text: an RSS teaser must not replace a full abstract.
        return value if len(value) >= len(current) * 0.9 else current
    if name == "categories":
        return current + [c for c in value if c not in current]
    return value


def merge_into(target: PaperIn, other: PaperIn) -> None:
    """The same paper twice in one batch: the later record's known fields win."""
    for name, value in other.as_row_values().items():
        setattr(target, name, value)


class BulkInsert:
    """`INSERT INTO paper` of new rows, bound through the driver's executemany."""

    def __init__(self, dialect: str) -> None:
        postgres = dialect == "postgresql"
        if postgres:
            # The casts SQLAlchemy's psycopg dialect writes too: JSON text and aware datetimes.
            casts = {name: "::JSON" for name in _JSON}
            casts.update({name: "::TIMESTAMP WITH TIME ZONE" for name in _DATETIMES})
            marks = [f"%s{casts.get(name, '')}" for name in _COLUMNS]
        else:
            marks = ["?"] * len(_COLUMNS)
        self.sql = f"INSERT INTO paper ({', '.join(_COLUMNS)}) VALUES ({', '.join(marks)})"
        self._get = itemgetter(*_COLUMNS)
        moment: Callable[[Any], Any] = _utc if postgres else _sqlite_datetime
        day: Callable[[Any], Any] = _same if postgres else _sqlite_date
        self._convert = [
            (i, _json if name in _JSON else moment if name in _DATETIMES else day)
            for i, name in enumerate(_COLUMNS)
            if name in _JSON or name in _DATETIMES or name == "hf_daily_date"
        ]

    def values(self, rows: list[Row]) -> list[tuple[Any, ...]]:
        """The rows' parameters in column order, as the driver binds them.

        The same datetime object recurs in every row (the write's `now`, a shared
        announcement), so each object is converted once: by identity, which holds while
        `rows` keeps them alive, for the length of this call."""
        done: dict[int, Any] = {}
        out = []
        for row in rows:
            values = list(self._get(row))
            for i, convert in self._convert:
                value = values[i]
                if value is not None:
                    key = id(value)
                    if key not in done:
                        done[key] = convert(value)
                    values[i] = done[key]
            out.append(tuple(values))
        return out


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _utc(value: datetime) -> datetime:
    """What sqlmodel's UTCDateTime binds: the instant in UTC; a naive value is refused."""
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() is None:
        raise ValueError("a naive datetime reached the store")
    return value.astimezone(UTC)


def _sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME storage format, of the UTC instant."""
    return _utc(value).isoformat(" ", "microseconds")[:26]


def _sqlite_date(value: date) -> str:
    return value.isoformat()


def _same(value: Any) -> Any:
    return value
