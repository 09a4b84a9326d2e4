"""Digest selection: which papers go into a channel's digest, in what order.

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
A channel whose people reacted 👍/👎 to its posts (`bot.taste`) has that relevance moved up or
down by how alike a paper is to its 👍 and 👎 papers, among the matches its topics fetched (it
never makes a topic look deeper); a channel without reactions is ranked exactly as before.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.aliases import normalize_topic
from bot.db import chunks
from bot.errors import QueryError
from bot.index_schema import Ranked, paper_time
from bot.models import Paper
from bot.query import parse_query
from bot.search import announced_matches
from bot.store import PaperStore
from bot.taste import Scorer, Taste, Vectors, terms, terms_of
from bot.taste_rarity import rarity
from bot.taste_store import tastes
from bot.times import aware

logger = logging.getLogger(__name__)

HF_TOP = "--hf-top"  # a flag, so it can never be read as a search word
HF_TOP_LABEL = "Hugging Face top papers"
# A refresh stamps what it stores with the time it STARTED (its `now`) and may commit minutes
# later (retries, a 429 wait); a digest built in between cannot see those papers, and the next
# window starts at the slot, after their stamp. So a window also looks this far back before its
# start: papers the previous digest already posted are in the ledger and skipped.
LATE_COMMIT = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to select for one channel: its topics (as typed) and its window."""

    channel_key: str
    topics: tuple[str, ...]
    since: datetime  # candidates were announced at or after this (UTC)
    max_papers: int = 10
    min_upvotes: int = 0
    # Nothing announced before this, whatever the window's look-back (`LATE_COMMIT`): a
    # user's first watch (bot.watches) gets no backlog.
    floor: datetime | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    paper: Paper
    topics: tuple[str, ...]
    relevance: float
    id: str = ""  # the paper's id (read once: ORM attribute access is slow in bulk)
    rank: float | None = None  # relevance as the channel's taste moved it (None: not moved)
    reason: str = ""  # why the taste moved it, for the card

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


# ----------------------------------------------------------------------------- selection


def is_hf_top(topic: str) -> bool:
    return normalize_topic(topic) == HF_TOP


def topic_label(topic: str) -> str:
    return HF_TOP_LABEL if is_hf_top(topic) else topic


def hf_listed(store: PaperStore, since: datetime, limit: int) -> tuple[list[Paper], int]:
    """The `limit` most upvoted papers on the Daily Papers lists dated on or after the day of
    `since` (UTC), and how many are on them."""
    where = col(Paper.hf_daily_date) >= since.date()
    stmt = (
        select(Paper).where(where).order_by(col(Paper.upvotes).desc(), col(Paper.id)).limit(limit)
    )
    with Session(store.engine) as session:
        papers = list(session.scalars(stmt).all())
        total = int(session.execute(select(func.count()).where(where)).scalar_one())
    return papers, total


def select_one(
    store: PaperStore, plan: Plan, now: datetime, delivered: Iterable[str] = ()
) -> Selection:
    return select_many(store, [plan], now, {plan.channel_key: set(delivered)})[plan.channel_key]


class RankKey(NamedTuple):
    """A topic's match in digest order: relevance (rounded to two decimals, so near-equal
    ones are ordered by upvotes), then upvotes, then recency; negated, so smaller is better."""

    relevance: float
    upvotes: int
    when: float
    id: str


@dataclass(slots=True)
class _Topic:
    """One distinct topic's matches in the window, best first, as far as `depth` looked."""

    text: str
    depth: int
    relevance: dict[str, float] = field(default_factory=dict)  # id -> relevance 0..1
    total: int = 0  # matches in the window in all (beyond `depth` too)
    next_rel: float | None = None  # relevance of the best match not looked at
    ranked: list[RankKey] = field(default_factory=list)

    def wants_more(self, short: bool, floor: float) -> bool:
        """Could a match not looked at still make a channel's cut? When the channel is short
        (picks were delivered or below its minimum upvotes), or the next match ties the
        weakest pick's relevance (upvotes then decide)."""
        if self.next_rel is None or self.depth >= MAX_DEPTH:
            return False
        return short or round(self.next_rel, 2) >= floor


# A topic never loads more than this many papers of one window (the rest count as "+N more").
MAX_DEPTH = 2_000
Delivered = Mapping[str, set[str]]


def select_many(
    store: PaperStore, plans: Sequence[Plan], now: datetime, delivered: Delivered | None = None
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
    topics = _distinct_topics(plans, delivered)
    papers: dict[str, Paper] = {}
    taught = _Taught.load(store, plans)
    todo, pending = list(topics), list(plans)
    for _round in range(4):
        _search_topics(store, {n: topics[n] for n in todo}, earliest, now, papers)
        deeper: set[str] = set()
        unsure: list[Plan] = []
        for plan in pending:
            picked = out[plan.channel_key] = _fan_out(plan, topics, papers, now, delivered, taught)
            wanted = _deeper_topics(plan, picked, topics, plan.channel_key in taught.tastes)
            deeper |= wanted
            if wanted:
                unsure.append(plan)
        for norm in deeper:
            topics[norm].depth = min(MAX_DEPTH, topics[norm].depth * 8)
        if not deeper:
            break
        todo, pending = sorted(deeper), unsure
    return out


def _distinct_topics(plans: Sequence[Plan], delivered: Delivered) -> dict[str, _Topic]:
    """Each distinct topic once, looking as deep as its most demanding channel needs."""
    topics: dict[str, _Topic] = {}
    for plan in plans:
        done = len(delivered.get(plan.channel_key, ()))
        depth = min(MAX_DEPTH, 2 * plan.max_papers + done + 10)
        for text in plan.topics:
            topic = topics.setdefault(normalize_topic(text), _Topic(text, depth))
            topic.depth = max(topic.depth, depth)
    return topics


def _deeper_topics(
    plan: Plan, picked: Selection, topics: Mapping[str, _Topic], taught: bool = False
) -> set[str]:
    """The plan's topics that must look deeper for its selection to be exact (a channel with a
    taste looks deeper only when it is short: taste reorders what was fetched)."""
    short = len(picked.picks) < plan.max_papers
    floor = min((p.relevance for p in picked.picks), default=0.0) if not taught else 2.0
    out = set()
    for text in plan.topics:
        norm = normalize_topic(text)
        found = topics.get(norm)
        if found is not None and found.wants_more(short, floor):
            out.add(norm)
    return out


def _search_topics(
    store: PaperStore,
    topics: Mapping[str, _Topic],
    since: datetime,
    now: datetime,
    papers: dict[str, Paper],
) -> None:
    """Look each topic up (to its depth), load the papers not loaded yet, rank them."""
    for norm, topic in topics.items():
        if norm == HF_TOP:
            hits = _hf_top(store, topic, since, papers)
        else:
            hits = _topic_hits(store, topic, since, now)
            for paper in store.get_many([h.id for h in hits if h.id not in papers]):
                papers[paper.id] = paper
        topic.relevance = {h.id: h.score for h in hits}
        topic.ranked = sorted(
            RankKey(-round(h.score, 2), -p.upvotes, -paper_time(p).timestamp(), h.id)
            for h in hits
            if (p := papers.get(h.id)) is not None
        )


def _hf_top(
    store: PaperStore, topic: _Topic, since: datetime, papers: dict[str, Paper]
) -> list[Ranked]:
    # Lists are whole days: the late-commit look-back must not add the day before.
    listed, topic.total = hf_listed(store, since + LATE_COMMIT, topic.depth + 1)
    top = max((p.upvotes for p in listed), default=0) or 1
    extra = listed[topic.depth :]
    topic.next_rel = extra[0].upvotes / top if extra else None
    for paper in listed[: topic.depth]:
        papers.setdefault(paper.id, paper)
    return [Ranked(p.id, p.upvotes / top) for p in listed[: topic.depth]]


def _topic_hits(store: PaperStore, topic: _Topic, since: datetime, now: datetime) -> list[Ranked]:
    """A search topic's matches announced in the window, relevance normalised to 0..1."""
    try:
        query = parse_query(topic.text, now)
    except QueryError as exc:  # a topic saved before a grammar change: skip, say so
        logger.warning("topic %r cannot be parsed any more: %s", topic.text, exc)
        return []
    if query.is_empty():
        return []
    found = announced_matches(store, query, since, now, topic.depth + 1)
    topic.total = found.total
    best = max((h.score for h in found.hits), default=0.0) or 1.0
    hits = found.hits
    topic.next_rel = hits[topic.depth].score / best if len(hits) > topic.depth else None
    return [Ranked(h.id, h.score / best) for h in hits[: topic.depth]]


class _Label(NamedTuple):
    """A topic as a channel's picks show it, and its matches (id -> relevance)."""

    name: str
    relevance: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class _Eligible:
    """Which matches may go into one channel's digest."""

    plan: Plan
    papers: Mapping[str, Paper]
    now: datetime
    done: set[str]  # delivered to this channel already
    searched: set[str]  # matched a search topic
    listed: set[str]  # on a followed Daily Papers list

    def __call__(self, pid: str) -> bool:
        if pid in self.done:
            return False
        paper = self.papers[pid]
        if paper.upvotes < self.plan.min_upvotes:
            return False
        when = aware(paper.announced_at)
        floor = self.plan.floor
        if floor is not None and (when is None or when < floor):
            return False
        since = self.plan.since
        if pid in self.searched and when is not None and since - LATE_COMMIT <= when <= self.now:
            return True
        # On a Daily Papers list of the window (--hf-top follows the lists, not announcements).
        day = paper.hf_daily_date
        return pid in self.listed and day is not None and day >= since.date()


def _fan_out(
    plan: Plan,
    topics: Mapping[str, _Topic],
    papers: Mapping[str, Paper],
    now: datetime,
    delivered: Delivered,
    taught: _Taught | None = None,
) -> Selection:
    """One channel's selection from its topics' rankings."""
    found = [
        (text, topic)
        for text in plan.topics
        if (topic := topics.get(normalize_topic(text))) is not None
    ]
    labels = [_Label(topic_label(text), topic.relevance) for text, topic in found]
    searched = {pid for label in labels if label.name != HF_TOP_LABEL for pid in label.relevance}
    listed = {pid for label in labels if label.name == HF_TOP_LABEL for pid in label.relevance}
    ok = _Eligible(plan, papers, now, delivered.get(plan.channel_key, set()), searched, listed)
    if taught is not None and plan.channel_key in taught.tastes:
        picks = taught.picks(plan, [t for _, t in found], ok, papers, labels)
    else:
        picks = _merged(plan, [t for _, t in found], ok, papers, labels)
    taken = {p.id for p in picks}
    unseen = sum(max(topic.total - len(topic.relevance), 0) for _, topic in found)
    more = sum(1 for pid in (searched | listed) - taken if ok(pid)) + unseen
    return Selection(plan.channel_key, plan.since, picks, more)


def _merged(
    plan: Plan,
    found: Sequence[_Topic],
    ok: _Eligible,
    papers: Mapping[str, Paper],
    labels: Sequence[_Label],
) -> list[Pick]:
    """The k-way merge of the per-topic rankings: a paper's first appearance is its best."""
    picks: list[Pick] = []
    taken: set[str] = set()
    for key in heapq.merge(*(topic.ranked for topic in found)):
        if len(picks) >= plan.max_papers:
            break
        if key.id in taken or not ok(key.id):
            continue
        taken.add(key.id)
        names = tuple(label.name for label in labels if key.id in label.relevance)
        picks.append(Pick(papers[key.id], names, -key.relevance, key.id))
    return picks


@dataclass(slots=True)
class _Taught:
    """The tastes of the channels being selected (`bot.taste`), and the weighed words of every
    paper they compare, each read and computed once per selection whatever the channels."""

    tastes: dict[str, Taste]
    vectors: Vectors
    scorers: dict[str, Scorer] = field(default_factory=dict)  # per channel, across rounds

    @classmethod
    def load(cls, store: PaperStore, plans: Sequence[Plan]) -> _Taught:
        found = tastes(store.engine, [p.channel_key for p in plans])
        taught = cls(found, Vectors(rarity(store) if found else _flat))
        reacted = sorted({pid for taste in found.values() for pid in taste.paper_ids})
        table = Paper.__table__  # type: ignore[attr-defined]
        columns = (table.c.id, table.c.title, table.c.abstract, table.c.ai_keywords)
        with Session(store.engine) as session:
            for chunk in chunks(reacted, 5_000):
                rows = session.execute(select(*columns).where(table.c.id.in_(chunk)))
                taught.vectors.bags.update((pid, terms_of(*parts)) for pid, *parts in rows)
        return taught

    def picks(
        self,
        plan: Plan,
        found: Sequence[_Topic],
        ok: _Eligible,
        papers: Mapping[str, Paper],
        labels: Sequence[_Label],
    ) -> list[Pick]:
        """The channel's picks, its topics' eligible matches ranked with the taste's moves."""
        best: dict[str, RankKey] = {}
        for topic in found:
            for key in topic.ranked:
                if (key.id not in best or key < best[key.id]) and ok(key.id):
                    best[key.id] = key
        bags = self.vectors.bags
        for pid in best:
            if pid not in bags:
                bags[pid] = terms(papers[pid])
        channel = plan.channel_key
        scorer = self.scorers.get(channel) or self.scorers.setdefault(
            channel, Scorer(self.tastes[channel], self.vectors)
        )
        moved = []
        for pid, key in best.items():
            delta = scorer.move(pid)
            moved.append((key._replace(relevance=-round(-key.relevance + delta, 2)), delta))
        moved.sort(key=lambda m: m[0])
        return [
            Pick(
                papers[key.id],
                tuple(label.name for label in labels if key.id in label.relevance),
                -best[key.id].relevance,
                key.id,
                -best[key.id].relevance + delta,
                scorer.reason(key.id, delta),
            )
            for key, delta in moved[: plan.max_papers]
        ]


def _flat(_word: str) -> float:
    return 1.0
