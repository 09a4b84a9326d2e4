"""Paper events: what a merge changed that people following a paper may want to hear.

When the store merges a newer record into a stored paper (a refresh, a lookup; never the first
insert, never a snapshot import), `event_rows(old, new)` lists what changed among:

- `code`: a GitHub repository appeared or changed;
- `version`: a higher arXiv version than the one stored (learning the first one is none);
- `venue`: the venue read from the comment and journal reference (`bot.venues`) appeared or
  changed (old/new are labels such as "NeurIPS 2025");
- `upvotes`, `stars`: the Hugging Face upvotes or GitHub stars changed (every change is
  kept, old and new as numbers: thresholds are the reader's choice).

The rows go to `paper_event` in the merge's transaction, with its change-feed mark; readers
page through them with `PaperStore.events_since(cursor)` in commit order (docs/pipeline.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.venues import venue_of

Row = dict[str, Any]

KINDS = ("code", "version", "venue", "upvotes", "stars")
# Events older than this are deleted by each refresh: follow-ups look 30 days back, and
# upvote changes alone add a few hundred rows a day.
KEEP_EVENTS = timedelta(days=60)


@dataclass(frozen=True, slots=True)
class PaperEventOut:
    """One event as readers get it."""

    id: int
    paper_id: str
    kind: str  # one of KINDS
    old: str | None
    new: str | None
    at: datetime
    mark: int


@dataclass(frozen=True, slots=True, order=True)
class EventCursor:
    """Where a reader is in the events: past (mark, id). Start from `EventCursor()`."""

    mark: int = 0
    id: int = 0


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[PaperEventOut]
    cursor: EventCursor  # pass it to the next call


def event_rows(old: Row, new: Row, at: datetime, mark: int) -> list[Row]:
    """The events of `old` becoming `new` (stored rows of one paper)."""
    rows: list[Row] = []

    def add(kind: str, before: Any, after: Any) -> None:
        rows.append(
            {
                "paper_id": new["id"],
                "kind": kind,
                "at": at,
                "mark": mark,
                "old": None if before is None else str(before),
                "new": None if after is None else str(after),
            }
        )

    if new["github_repo"] and new["github_repo"] != old["github_repo"]:
        add("code", old["github_repo"], new["github_repo"])
    # A first known version (Hugging Face lists carry none) is no new version.
    before_v, after_v = old["version"], new["version"]
    if before_v is not None and after_v is not None and before_v < after_v:
        add("version", before_v, after_v)
    if (old["arxiv_comment"], old["journal_ref"]) != (new["arxiv_comment"], new["journal_ref"]):
        before = venue_of(old["arxiv_comment"], old["journal_ref"])
        after = venue_of(new["arxiv_comment"], new["journal_ref"])
        if after is not None and after != before:
            add("venue", before.label() if before else None, after.label())
    if new["upvotes"] != old["upvotes"]:
        add("upvotes", old["upvotes"], new["upvotes"])
    if new["github_stars"] is not None and new["github_stars"] != old["github_stars"]:
        add("stars", old["github_stars"], new["github_stars"])
    return rows
