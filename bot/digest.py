"""Digests: when a channel is due, which papers go into its digest, in what order, as a Reply.

Pure functions of the store and `now` (nothing here posts or writes; `bot.delivery` does).

Selection (DESIGN.md, Digests): the candidates of a channel are the papers ANNOUNCED between
its previous slot (`Channel.last_digest_at`; a first digest looks back one schedule period, at
most `FIRST_WINDOW`) and now, that match any of its topics and were never delivered to it.
`Paper.announced_at` (see `bot.announce`) is arXiv's announcement or the Daily Papers day, not
when the store got the paper: an import of old papers keeps their old dates and never floods
a digest. A paper appears once and lists every topic it matched. The topic
`--hf-top` (`HF_TOP`) follows the top of each day's Hugging Face Daily Papers list instead.

Cost: every DISTINCT topic is asked once of the store's search index, with a range on the
`announced` field, for its best few matches; the results fan out to the channels
(`select_many`). Only those few papers are loaded, whatever a window holds.

Ranking: relevance of the best matching topic (normalised per topic to 0..1 and rounded to two
decimals, so papers of near-equal relevance are ordered by upvotes), then upvotes, then recency.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot import search
from bot.aliases import normalize_topic
from bot.cards import to_card
from bot.errors import QueryError
from bot.index import paper_time
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
# A refresh stamps what it stores with the time it STARTED (its `now`) and may commit minutes
# later (retries, a 429 wait); a digest built in between cannot see those papers, and the next
# window starts at the slot, after their stamp. So a window also looks this far back before its
# start: papers the previous digest already posted are in the ledger and skipped.
LATE_COMMIT = timedelta(hours=2)
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
    since: datetime  # candidates were announced at or after this (UTC)
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


# ----------------------------------------------------------------------------- selection


def is_hf_top(topic: str) -> bool:
    return normalize_topic(topic) == HF_TOP


def topic_label(topic: str) -> str:
    return HF_TOP_LABEL if is_hf_top(topic) else topic


def hf_listed(
    store: PaperStore, since: datetime, limit: int
) -> tuple[list[Paper], int]:
    """The `limit` most upvoted papers on the Daily Papers lists dated on or after the day of
    `since` (UTC), and how many are on them."""
    where = col(Paper.hf_daily_date) >= since.date()
    stmt = (
        select(Paper)
        .where(where)
        .order_by(col(Paper.upvotes).desc(), col(Paper.id))
        .limit(limit)
    )
    with Session(store.engine) as session:
        papers = list(session.scalars(stmt).all())
        total = int(session.execute(select(func.count()).where(where)).scalar_one())
    return papers, total


def select_one(
    store: PaperStore, plan: Plan, now: datetime, delivered: Iterable[str] = ()
) -> Selection:
    return select_many(store, [plan], now, {plan.channel_key: set(delivered)})[plan.channel_key]


@dataclass(slots=True)
class _Topic:
    """One distinct topic's matches in the window, best first, as far as `depth` looked."""

    text: str
    depth: int
    hits: list[tuple[str, float]] = field(default_factory=list)  # (id, relevance 0..1)
    total: int = 0  # matches in the window in all (beyond `depth` too)
    next_rel: float | None = None  # relevance of the best match not looked at
    ranked: list[tuple[tuple[float, int, float, str], str]] = field(default_factory=list)
    relevance: dict[str, float] = field(default_factory=dict)


def select_many(
    store: PaperStore,
    plans: Sequence[Plan],
    now: datetime,
    delivered: Mapping[str, set[str]] | None = None,
) -> dict[str, Selection]:
    """Every plan's ranked, capped selection; each distinct topic is searched once.

    The store's index answers each topic for the papers announced since the earliest window
    and returns only its best few (a few times the largest cap that follows the topic); a
    channel that ends up short because its picks were delivered or below its minimum upvotes
    makes its topics look deeper. Memory and time follow the number of topics and caps, not
    how many papers were imported.
    """
    delivered = delivered or {}
    out = {p.channel_key: Selection(p.channel_key, p.since) for p in plans}
    if not plans:
        return out
    earliest = min(p.since for p in plans) - LATE_COMMIT
    topics: dict[str, _Topic] = {}
    for plan in plans:
        done = len(delivered.get(plan.channel_key, ()))
        for text in plan.topics:
            depth = min(MAX_DEPTH, 2 * plan.max_papers + done + 10)
            norm = normalize_topic(text)
            topic = topics.setdefault(norm, _Topic(text, depth))
            topic.depth = max(topic.depth, depth)
    papers: dict[str, Paper] = {}
    todo = list(topics)
    pending = list(plans)
    for _round in range(4):
        _search_topics(store, {n: topics[n] for n in todo}, earliest, now, papers)
        unsure: list[Plan] = []
        todo = []
        for plan in pending:
            picked = _fan_out(plan, topics, papers, now, delivered)
            out[plan.channel_key] = picked
            short = len(picked.picks) < plan.max_papers
            floor = min((p.relevance for p in picked.picks), default=0.0)
            deeper = False
            for text in plan.topics:
                norm = normalize_topic(text)
                found = topics.get(norm)
                if found is None or found.next_rel is None or found.depth >= MAX_DEPTH:
                    continue
                # Look deeper when a match not looked at could still make this channel's cut:
                # the channel is short (picks were delivered or below its minimum upvotes), or
                # the next match ties the weakest pick's relevance (upvotes then decide).
                if short or round(found.next_rel, 2) >= floor:
                    deeper = True
                    if norm not in todo:
                        found.depth = min(MAX_DEPTH, found.depth * 8)
                        todo.append(norm)
            if deeper:
                unsure.append(plan)
        if not todo:
            break
        pending = unsure
    return out


# A topic never loads more than this many papers of one window (the rest count as "+N more").
MAX_DEPTH = 2_000


def _search_topics(
    store: PaperStore,
    topics: Mapping[str, _Topic],
    since: datetime,
    now: datetime,
    papers: dict[str, Paper],
) -> None:
    index = search._index_of(store)
    aliases = store.aliases()
    for norm, topic in topics.items():
        if norm == HF_TOP:
            # Lists are whole days: the late-commit look-back must not add the day before.
            listed, topic.total = hf_listed(store, since + LATE_COMMIT, topic.depth + 1)
            top = max((p.upvotes for p in listed), default=0) or 1
            topic.hits = [(p.id, p.upvotes / top) for p in listed[: topic.depth]]
            extra = listed[topic.depth :]
            topic.next_rel = extra[0].upvotes / top if extra else None
            for paper in listed[: topic.depth]:
                papers.setdefault(paper.id, paper)
        else:
            try:
                query = search.parse_query(topic.text, now)
            except QueryError as exc:  # a topic saved before a grammar change: skip, say so
                logger.warning("topic %r cannot be parsed any more: %s", topic.text, exc)
                continue
            if query.is_empty():
                continue
            hits, topic.total = index.announced_between(
                query, aliases, since, now, topic.depth + 1
            )
            best = max((s for _, s in hits), default=0.0) or 1.0
            topic.hits = [(pid, s / best) for pid, s in hits[: topic.depth]]
            topic.next_rel = hits[topic.depth][1] / best if len(hits) > topic.depth else None
            missing = [pid for pid, _ in hits if pid not in papers]
            for paper in store.get_many(missing):
                papers[paper.id] = paper
        keyed = []
        for pid, rel in topic.hits:
            hit = papers.get(pid)
            if hit is None:
                continue
            key = (-round(rel, 2), -hit.upvotes, -paper_time(hit).timestamp(), pid)
            keyed.append((key, pid))
        keyed.sort()
        topic.ranked = keyed
        topic.relevance = dict(topic.hits)


def _fan_out(
    plan: Plan,
    topics: Mapping[str, _Topic],
    papers: Mapping[str, Paper],
    now: datetime,
    delivered: Mapping[str, set[str]],
) -> Selection:
    done = delivered.get(plan.channel_key, set())
    lists = []
    labels: list[tuple[str, dict[str, float]]] = []
    unseen = 0  # matches beyond what was looked at (counted, never loaded)
    for text in plan.topics:
        topic = topics.get(normalize_topic(text))
        if topic is None:
            continue
        lists.append(topic.ranked)
        labels.append((topic_label(text), topic.relevance))
        unseen += max(topic.total - len(topic.hits), 0)
    since_day = plan.since.date()

    searched: set[str] = set()
    listed: set[str] = set()
    for label, hits in labels:
        (listed if label == HF_TOP_LABEL else searched).update(hits)

    def ok(pid: str) -> bool:
        if pid in done:
            return False
        paper = papers[pid]
        if paper.upvotes < plan.min_upvotes:
            return False
        when = aware(paper.announced_at)
        if pid in searched and when is not None and plan.since - LATE_COMMIT <= when <= now:
            return True
        # On a Daily Papers list of the window (--hf-top follows the lists, not announcements).
        return pid in listed and paper.hf_daily_date is not None and (
            paper.hf_daily_date >= since_day
        )

    picks: list[Pick] = []
    taken: set[str] = set()
    # The k-way merge of the per-topic rankings: a paper's first appearance is its best topic.
    for key, pid in heapq.merge(*lists):
        if len(picks) >= plan.max_papers:
            break
        if pid in taken or not ok(pid):
            continue
        taken.add(pid)
        names = tuple(label for label, hits in labels if pid in hits)
        picks.append(Pick(papers[pid], names, -key[0], pid))
    union: set[str] = set()
    for _label, hits in labels:
        union.update(hits)
    more = sum(1 for pid in union - taken if ok(pid)) + unseen
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
