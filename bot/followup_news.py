"""Follow-ups: which paper events are worth a reply in a post's thread, and the reply.

Pure: events in (`bot.paper_events.PaperEventOut`), `NewsItem`s out; a stored paper and one
item in, a short `Reply` out (the paper's title, what happened, a link). Thresholds are
crossed once: a paper going from 40 to 230 upvotes is one reply ("200 upvotes"), never three.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.cards import to_card
from bot.links import github_url
from bot.messages import Reply, ReplyKind, shorten
from bot.models import Paper

UPVOTE_LEVELS = (50, 100, 200, 500)
STAR_LEVELS = (100, 1_000)
LEVELS = {"upvotes": UPVOTE_LEVELS, "stars": STAR_LEVELS}
FOLLOW_DAYS = timedelta(days=30)  # posts older than this get no follow-up
# An event older than this when read is old news (a backlog after an upgrade or downtime).
FRESH_FOR = timedelta(days=2)
TITLE_CHARS = 150


@dataclass(frozen=True, slots=True)
class NewsItem:
    """One piece of news about a paper: a kind, its threshold (0 for code/version/venue),
    the new value to tell, when it happened, and the event it came from."""

    paper_id: str
    kind: str
    level: int
    detail: str | None
    at: datetime
    event_id: int


class _Event(Protocol):
    """What `news` reads of an event (`PaperEventOut` has these fields)."""

    @property
    def id(self) -> int: ...
    @property
    def paper_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def old(self) -> str | None: ...
    @property
    def new(self) -> str | None: ...
    @property
    def at(self) -> datetime: ...


def crossed(kind: str, old: str | None, new: str | None) -> int:
    """The highest threshold of `kind` that going from `old` to `new` crossed upwards, or 0."""
    try:
        before, after = int(old or 0), int(new or 0)
    except ValueError:
        return 0
    return max((t for t in LEVELS.get(kind, ()) if before < t <= after), default=0)


def item_of(event: _Event) -> NewsItem | None:
    """The news in one event, if any: a repository appearing (not changing), a higher
    version, a venue, a threshold crossed."""
    level = 0
    if event.kind in LEVELS:
        level = crossed(event.kind, event.old, event.new)
        if not level:
            return None
    elif event.kind == "code" and event.old is not None:
        return None  # a repository that moved is not a release
    elif event.kind not in ("code", "version", "venue") or not event.new:
        return None
    return NewsItem(event.paper_id, event.kind, level, event.new, event.at, event.id)


def news(events: Iterable[_Event], now: datetime) -> list[NewsItem]:
    """The news in a page of events: per paper and kind the latest, highest item; stars
    left out for a paper whose code appeared in the same page (that reply shows them)."""
    best: dict[tuple[str, str], NewsItem] = {}
    for event in events:
        item = item_of(event)
        if item is None or now - item.at > FRESH_FOR:
            continue
        key = (item.paper_id, item.kind)
        held = best.get(key)
        if held is None or item.level >= held.level:
            best[key] = item
    with_code = {pid for pid, kind in best if kind == "code"}
    return [i for i in best.values() if not (i.kind == "stars" and i.paper_id in with_code)]


def headline(kind: str, level: int, detail: str | None, paper: Paper, rank: int | None) -> str:
    """What happened, in a few words."""
    if kind == "code":
        stars = f" ({paper.github_stars:,} ★)" if paper.github_stars else ""
        return f"Code released{stars}"
    if kind == "version":
        return f"New arXiv version: v{detail}"
    if kind == "venue":
        return f"Accepted at {shorten(detail or '', 60)}"
    if kind == "upvotes":
        count = max(paper.upvotes, level)
        if rank is not None:
            return f"Now #{rank} on Hugging Face this week, {count:,} upvotes"
        return f"Passed {level:,} upvotes on Hugging Face (now {count:,})"
    count = max(paper.github_stars or 0, level)
    return f"Passed {level:,} GitHub stars (now {count:,})"


def followup_reply(
    kind: str, level: int, detail: str | None, paper: Paper, parent: str, rank: int | None = None
) -> Reply:
    """The reply posted in the thread of `parent` (a message ref): title = what happened and
    the paper; text = the link that shows it (the repository, the version, the paper)."""
    what = headline(kind, level, detail, paper, rank)
    link = to_card(paper).url
    if kind == "version" and detail and detail.isdigit() and "/abs/" in link:
        link = f"{link}v{detail}"
    elif kind in ("code", "stars"):
        link = github_url(paper.github_repo) or link
    return Reply(
        kind=ReplyKind.INFO,
        title=f"{what}: {shorten(paper.title, TITLE_CHARS)}",
        text=link,
        thread_of=parent,
    )


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of `now`'s week (Hugging Face's weekly list)."""
    day = now.date() - timedelta(days=now.weekday())
    return datetime(day.year, day.month, day.day, tzinfo=now.tzinfo)
