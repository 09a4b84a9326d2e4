"""Digests: when a channel is due, which papers go into its digest, in what order, as a Reply.

Pure functions of the store and `now` (nothing here posts or writes; `bot.delivery` does).

Selection (DESIGN.md, Digests): the candidates of a channel are the papers first seen since its
previous slot (`Channel.last_digest_at`; a first digest looks back one schedule period, at most
`FIRST_WINDOW`), that match any of its topics and were never delivered to it. A paper appears
once and lists every topic it matched. The topic `--hf-top` (`HF_TOP`) follows the top of each
day's Hugging Face Daily Papers list instead of a search.

Cost: every DISTINCT topic is evaluated once, against a small in-memory index of only the new
papers, and the results fan out to the channels (`select_many`). With 10,000 channels sharing a
few hundred topics that is a few hundred searches over a few thousand documents, not 30,000
searches over the whole store.

Ranking: relevance of the best matching topic (normalised per topic to 0..1 and rounded to two
decimals, so papers of near-equal relevance are ordered by upvotes), then upvotes, then recency.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from bot import search
from bot.aliases import normalize_topic
from bot.cards import to_card
from bot.errors import QueryError
from bot.index import PaperIndex, paper_time
from bot.messages import Reply, ReplyKind
from bot.models import Paper, SourceState
from bot.schedules import Schedule
from bot.store import PaperStore

logger = logging.getLogger(__name__)

HF_TOP = "--hf-top"  # a flag, so it can never be read as a search word
HF_TOP_LABEL = "Hugging Face top papers"
FIRST_WINDOW = timedelta(days=7)  # a channel's first digest looks back at most this far
# No digest looks back further than this: a channel whose digests were off for months gets
# the last two weeks, not months of papers (a weekly digest plus a week of downtime fits).
MAX_WINDOW = timedelta(days=14)
# Above this many new papers the in-memory index costs more than asking the store's index.
SMALL_INDEX_MAX = 50_000
_ET = ZoneInfo("America/New_York")  # arXiv announces at 20:00 Eastern, Sunday to Thursday
_SOURCE_NAMES = {"hf": "Hugging Face", "arxiv": "arXiv"}


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
        "key", "schedule", "digest_time", "timezone", "max_papers", "min_upvotes", "quiet",
        "paused_reason", "next_digest_at", "last_digest_at",
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """What to select for one channel: its topics (as typed) and its window."""

    channel_key: str
    topics: tuple[str, ...]
    since: datetime  # candidates were first seen at or after this (UTC)
    max_papers: int = 10
    min_upvotes: int = 0


@dataclass(frozen=True, slots=True)
class Pick:
    paper: Paper
    topics: tuple[str, ...]
    relevance: float
    id: str = ""  # the paper's id (read once: ORM attribute access is slow in bulk)

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.paper.id)


@dataclass(slots=True)
class Selection:
    """A channel's ranked digest: `picks` are shown (capped), `more` were left out."""

    channel_key: str
    since: datetime
    picks: list[Pick] = field(default_factory=list)
    more: int = 0

    @property
    def paper_ids(self) -> list[str]:
        return [p.id for p in self.picks]


# ------------------------------------------------------------------------------ schedule


def schedule_of(channel: ChannelSettings) -> Schedule:
    return Schedule.from_stored(channel.schedule, channel.digest_time, channel.timezone)


def is_due(channel: ChannelSettings, now: datetime) -> bool:
    """A channel with digests on, not paused, whose next slot has come."""
    if channel.schedule == "off" or channel.paused_reason:
        return False
    nxt = aware(channel.next_digest_at)
    return nxt is not None and nxt <= now


def due_slot(channel: ChannelSettings, now: datetime) -> datetime | None:
    """The slot a due channel builds now: the LATEST slot that has passed.

    After downtime several slots have passed; building only the latest one (its window starting
    at the previous digest) gives one catch-up digest instead of one per missed slot.
    """
    return schedule_of(channel).previous_slot(now)


def window_start(channel: ChannelSettings, slot: datetime) -> datetime:
    """Candidates are papers first seen since this: the previous digest (at most MAX_WINDOW
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


# ----------------------------------------------------------------------------- selection


def is_hf_top(topic: str) -> bool:
    return normalize_topic(topic) == HF_TOP


def topic_label(topic: str) -> str:
    return HF_TOP_LABEL if is_hf_top(topic) else topic


def new_papers(store: PaperStore, since: datetime, limit: int | None = None) -> list[Paper]:
    """Papers first seen at or after `since` (indexed column), oldest first."""
    stmt = select(Paper).where(col(Paper.first_seen_at) >= since).order_by(
        col(Paper.first_seen_at), col(Paper.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    with Session(store.engine) as session:
        return list(session.scalars(stmt).all())


def hf_listed(store: PaperStore, since: datetime) -> list[Paper]:
    """Papers on the Daily Papers lists dated on or after the day of `since` (UTC)."""
    stmt = select(Paper).where(col(Paper.hf_daily_date) >= since.date())
    with Session(store.engine) as session:
        return list(session.scalars(stmt).all())


def select_one(
    store: PaperStore, plan: Plan, now: datetime, delivered: Iterable[str] = ()
) -> Selection:
    return select_many(store, [plan], now, {plan.channel_key: set(delivered)})[plan.channel_key]


def select_many(
    store: PaperStore,
    plans: Sequence[Plan],
    now: datetime,
    delivered: Mapping[str, set[str]] | None = None,
) -> dict[str, Selection]:
    """Every plan's ranked, capped selection; each distinct topic is searched once."""
    delivered = delivered or {}
    out = {p.channel_key: Selection(p.channel_key, p.since) for p in plans}
    if not plans:
        return out
    earliest = min(p.since for p in plans)
    fresh = new_papers(store, earliest)
    wants_hf = any(is_hf_top(t) for p in plans for t in p.topics)
    listed = hf_listed(store, earliest) if wants_hf else []
    papers = {p.id: p for p in fresh}
    for paper in listed:
        papers.setdefault(paper.id, paper)
    if not papers:
        return out
    ranked = _rank_topics(store, plans, fresh, listed, now)
    # Plain values once per paper: ORM attribute access is slow in a loop over 10,000 channels.
    facts = {
        pid: _Facts(p.upvotes, aware(p.first_seen_at), p.hf_daily_date)
        for pid, p in papers.items()
    }
    for plan in plans:
        out[plan.channel_key] = _fan_out(plan, ranked, papers, facts, earliest, delivered)
    return out


@dataclass(frozen=True, slots=True)
class _Facts:
    upvotes: int
    first_seen: datetime | None
    hf_daily_date: date | None


# topic (normalised) -> [(sort key, paper id)] best first, and the set of matching ids
_Ranked = dict[str, tuple[list[tuple[tuple[float, int, float, str], str]], dict[str, float]]]


def _rank_topics(
    store: PaperStore,
    plans: Sequence[Plan],
    fresh: list[Paper],
    listed: list[Paper],
    now: datetime,
) -> _Ranked:
    topics: dict[str, str] = {}
    for plan in plans:
        for topic in plan.topics:
            topics.setdefault(normalize_topic(topic), topic)
    by_id = {p.id: p for p in fresh}
    index = _index_over(store, fresh)
    aliases = store.aliases()
    ranked: _Ranked = {}
    for norm, text in topics.items():
        if norm == HF_TOP:
            top = max((p.upvotes for p in listed), default=0) or 1
            hits = [(p.id, p.upvotes / top) for p in listed]
            pool = {p.id: p for p in listed}
        else:
            try:
                query = search.parse_query(text, now)
            except QueryError as exc:  # a topic saved before a grammar change: skip, say so
                logger.warning("topic %r cannot be parsed any more: %s", text, exc)
                continue
            if query.is_empty():
                continue
            hits = _search(store, index, query, aliases, fresh, now)
            best = max((s for _, s in hits), default=0.0) or 1.0
            hits = [(pid, s / best) for pid, s in hits]
            pool = by_id
        keyed = []
        for pid, rel in hits:
            paper = pool.get(pid)
            if paper is None:
                continue
            key = (-round(rel, 2), -paper.upvotes, -paper_time(paper).timestamp(), pid)
            keyed.append((key, pid))
        keyed.sort()
        ranked[norm] = (keyed, {pid: rel for pid, rel in hits})
    return ranked


def _index_over(store: PaperStore, fresh: list[Paper]) -> PaperIndex | None:
    """A throwaway index of only the new papers (None: too many, use the store's index)."""
    if len(fresh) > SMALL_INDEX_MAX:
        return None
    index = PaperIndex(None)
    index.upsert(fresh)
    return index


def _search(
    store: PaperStore,
    index: PaperIndex | None,
    query: search.Query,
    aliases: Mapping[str, Sequence[str]],
    fresh: list[Paper],
    now: datetime,
) -> list[tuple[str, float]]:
    if index is not None:
        return index.search(query, aliases, len(fresh), now)
    # Many new papers (a bulk import): the store's index with a generous limit, filtered here.
    wanted = {p.id for p in fresh}
    hits = search.search_papers(store, query, max(len(fresh), 1_000), now)
    return [(h.paper.id, h.score) for h in hits if h.paper.id in wanted]


def _fan_out(
    plan: Plan,
    ranked: _Ranked,
    papers: Mapping[str, Paper],
    facts: Mapping[str, _Facts],
    earliest: datetime,
    delivered: Mapping[str, set[str]],
) -> Selection:
    done = delivered.get(plan.channel_key, set())
    lists = []
    labels: list[tuple[str, dict[str, float]]] = []
    for topic in plan.topics:
        entry = ranked.get(normalize_topic(topic))
        if entry is None:
            continue
        lists.append(entry[0])
        labels.append((topic_label(topic), entry[1]))
    hf_top = any(is_hf_top(t) for t in plan.topics)
    since_day = plan.since.date()

    def eligible(pid: str) -> bool:
        if pid in done:
            return False
        fact = facts[pid]
        if fact.upvotes < plan.min_upvotes:
            return False
        if fact.first_seen is not None and fact.first_seen >= plan.since:
            return True
        # Not new to the store, but on a Daily Papers list of the window (--hf-top only).
        return hf_top and fact.hf_daily_date is not None and fact.hf_daily_date >= since_day

    picks: list[Pick] = []
    taken: set[str] = set()
    # The k-way merge of the per-topic rankings: a paper's first appearance is its best topic.
    for key, pid in heapq.merge(*lists):
        if len(picks) >= plan.max_papers:
            break
        if pid in taken or not eligible(pid):
            continue
        taken.add(pid)
        topics = tuple(label for label, hits in labels if pid in hits)
        picks.append(Pick(papers[pid], topics, -key[0], pid))
    union: set[str] = set()
    for _label, hits in labels:
        union.update(hits)
    rest = union - taken
    if not rest:
        more = 0
    elif not done and plan.min_upvotes <= 0 and plan.since <= earliest and not hf_top:
        more = len(rest)  # the common case: every match is new to this channel
    else:
        more = sum(1 for pid in rest if eligible(pid))
    return Selection(plan.channel_key, plan.since, picks, more)


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
    since = _local(selection.since, zone)
    cards = tuple(to_card(p.paper, p.relevance, p.topics) for p in selection.picks)
    prefix = "Preview: " if preview else ""
    if not cards:
        if (channel.quiet if quiet is None else quiet) and not preview:
            return None
        what = ", ".join(topic_label(t) for t in topics) or "this channel's topics"
        note = source_note(states, selection.since, now)
        return Reply(
            kind=ReplyKind.DIGEST,
            title=f"{prefix}No new papers on {what} since {since}.{(' ' + note) if note else ''}",
            ephemeral=preview,
        )
    n = len(cards) + selection.more
    footer = "Change topics with `/papers subscribe` / `/papers unsubscribe`; see `/papers list`."
    if preview:
        footer = "Only a preview: nothing was posted or marked as delivered. " + footer
    return Reply(
        kind=ReplyKind.DIGEST,
        title=f"{prefix}{n} new paper{'s' if n != 1 else ''} on your topics since {since}",
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


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M %Z")


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every datetime here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
