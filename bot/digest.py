"""Digests: when a channel is due, which papers go into its digest, in what order, as a Reply.

Pure functions of the store and `now` (nothing here posts or writes; `bot.delivery` does).

Selection (which papers, in what order) is in `bot.digest_select`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from bot.cards import to_card
from bot.digest_select import (
    HF_TOP,
    HF_TOP_LABEL,
    Pick,
    Plan,
    Selection,
    is_hf_top,
    select_many,
    select_one,
    topic_label,
)
from bot.messages import Reply, ReplyKind, is_direct_key
from bot.models import SourceState
from bot.schedules import Schedule
from bot.times import aware, local_label

__all__ = [  # selection lives in bot.digest_select; callers know one module, `digest`
    "HF_TOP",
    "HF_TOP_LABEL",
    "ChannelSettings",
    "DueChannel",
    "Pick",
    "Plan",
    "Selection",
    "arxiv_announced",
    "digest_reply",
    "due_slot",
    "is_hf_top",
    "plan_for",
    "schedule_of",
    "select_many",
    "select_one",
    "source_note",
    "topic_label",
    "window_start",
]

FIRST_WINDOW = timedelta(days=7)  # a channel's first digest looks back at most this far
# No digest looks back further than this: a channel whose digests were off for months gets
# the last two weeks, not months of papers (a weekly digest plus a week of downtime fits).
MAX_WINDOW = timedelta(days=14)
_ET = ZoneInfo("America/New_York")  # arXiv announces at 20:00 Eastern, Sunday to Thursday
_SOURCE_NAMES = {"hf": "Hugging Face", "arxiv": "arXiv"}
WATCH_FOOTER = (
    "From your watches; only you get this. `/papers watches` lists them, "
    "`/papers unwatch N` stops one."
)


class ChannelSettings(Protocol):
    """What digests read of a channel: a `bot.models.Channel`, or a `DueChannel` row."""

    @property
    def key(self) -> str: ...
    @property
    def schedule(self) -> str: ...
    @property
    def digest_time(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def max_papers(self) -> int: ...
    @property
    def min_upvotes(self) -> int: ...
    @property
    def quiet(self) -> bool: ...
    @property
    def paused_reason(self) -> str | None: ...
    @property
    def next_digest_at(self) -> datetime | None: ...
    @property
    def last_digest_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class DueChannel:
    """A channel's digest settings as a plain row (thousands are read per tick)."""

    key: str
    schedule: str
    digest_time: str
    timezone: str
    max_papers: int
    min_upvotes: int
    quiet: bool
    paused_reason: str | None
    next_digest_at: datetime | None
    last_digest_at: datetime | None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "key",
        "schedule",
        "digest_time",
        "timezone",
        "max_papers",
        "min_upvotes",
        "quiet",
        "paused_reason",
        "next_digest_at",
        "last_digest_at",
    )


# ------------------------------------------------------------------------------ schedule


def schedule_of(channel: ChannelSettings) -> Schedule:
    return Schedule.from_stored(channel.schedule, channel.digest_time, channel.timezone)


def due_slot(channel: ChannelSettings, now: datetime) -> datetime | None:
    """The slot a due channel builds now: the LATEST slot that has passed.

    After downtime several slots have passed; building only the latest one (its window starting
    at the previous digest) gives one catch-up digest instead of one per missed slot.
    """
    return schedule_of(channel).previous_slot(now)


def window_start(channel: ChannelSettings, slot: datetime) -> datetime:
    """Candidates are papers announced since this: the previous digest (at most MAX_WINDOW
    back), else one schedule period before the slot (at most FIRST_WINDOW), so a first
    digest is not empty just because the topic was added a minute before the slot."""
    last = aware(channel.last_digest_at)
    if last is not None:
        return max(last, slot - MAX_WINDOW)
    before = schedule_of(channel).previous_slot(slot - timedelta(microseconds=1))
    floor = slot - FIRST_WINDOW
    start = before if before is not None else floor
    return max(start, floor)


def plan_for(channel: ChannelSettings, topics: Sequence[str], slot: datetime) -> Plan:
    return Plan(
        channel_key=channel.key,
        topics=tuple(topics),
        since=window_start(channel, slot),
        max_papers=channel.max_papers,
        min_upvotes=channel.min_upvotes,
    )


# --------------------------------------------------------------------------------- reply


def digest_reply(
    channel: ChannelSettings,
    selection: Selection,
    now: datetime,
    states: Sequence[SourceState] = (),
    *,
    topics: Sequence[str] = (),
    preview: bool = False,
    quiet: bool | None = None,
) -> Reply | None:
    """The digest as a Reply; None for an empty digest in a quiet channel (`quiet` overrides
    the channel's setting: a digest someone asked for always answers)."""
    zone = channel.timezone or "UTC"
    since = local_label(selection.since, zone)
    cards = tuple(to_card(p.paper, p.relevance, p.topics, p.reason) for p in selection.picks)
    prefix = "Preview: " if preview else ""
    if not cards:
        if (channel.quiet if quiet is None else quiet) and not preview:
            return None
        what = ", ".join(topic_label(t) for t in topics) or "this channel's topics"
        floor = f" with {channel.min_upvotes}+ upvotes" if channel.min_upvotes else ""
        note = source_note(states, selection.since, now)
        return Reply(
            kind=ReplyKind.DIGEST,
            title=f"{prefix}No new papers{floor} on {what} since {since}."
            f"{(' ' + note) if note else ''}",
            ephemeral=preview,
        )
    n = len(cards) + selection.more
    footer = "Change topics with `/papers subscribe` / `/papers unsubscribe`; see `/papers list`."
    mine = "your topics"
    if is_direct_key(channel.key):  # a user's watches, in their DM (bot.watches)
        footer, mine = WATCH_FOOTER, "your watches"
    if preview:
        footer = "Only a preview: nothing was posted or marked as delivered. " + footer
    return Reply(
        kind=ReplyKind.DIGEST,
        title=f"{prefix}{n} new paper{'s' if n != 1 else ''} on {mine} since {since}",
        cards=cards,
        more=selection.more,
        footer=footer,
        ephemeral=preview,
    )


def source_note(states: Sequence[SourceState], since: datetime, now: datetime) -> str:
    """Why a digest may be empty: a failing source, or no arXiv announcement (weekend)."""
    notes = []
    for state in sorted(states, key=lambda s: s.source):
        if state.consecutive_failures:
            name = _SOURCE_NAMES.get(state.source, state.source)
            when = aware(state.last_success_at)
            last = f"; last success {when:%Y-%m-%d %H:%M} UTC" if when else ""
            notes.append(
                f"{name} is failing ({state.consecutive_failures}x: "
                f"{(state.last_error or 'error')[:80]}{last})."
            )
    if not arxiv_announced(since, now):
        notes.append("arXiv announced no new papers in that time (it skips weekends).")
    return " ".join(notes)


def arxiv_announced(since: datetime, now: datetime) -> bool:
    """Whether an arXiv announcement (20:00 America/New_York, Sunday to Thursday) falls in
    (since, now]."""
    day = since.astimezone(_ET).date()
    last = now.astimezone(_ET).date()
    while day <= last:
        if day.weekday() in (6, 0, 1, 2, 3):  # Sun..Thu evenings
            moment = datetime.combine(day, time(20, 0), _ET).astimezone(UTC)
            if since < moment <= now:
                return True
        day += timedelta(days=1)
    return False
