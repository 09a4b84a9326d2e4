"""Digest selection: which papers go into a channel's digest, in what order.

Selection (DESIGN.md, Digests): the candidates of a channel are the papers ANNOUNCED between
its previous slot (`Channel.last_digest_at`; a first digest looks back one schedule period, at
most `FIRST_WINDOW`) and now, that match any of its topics and were never delivered to it.
`Paper.announced_at` (see `bot.announce`) is arXiv's announcement or the Daily Papers day, not
when the store got the paper: an import of old papers keeps their old dates and never floods
a digest. A paper appears once and lists every topic it matched. The topic
`--hf-top` (`HF_TOP`) follows the top of each day's Hugging Face Daily Papers list instead.

Cost: every DISTINCT topic is asked once of the store's search index, with a range on the
`announced` field, for its matches in the window (ids, scores and fast fields only, at most
`MAX_DEPTH`); the results fan out to the channels (`select_many`). Only the papers a digest
shows are loaded, whatever a window holds.

Relevance floor (`bot.digest_floor`): a match scoring under a share of its topic's best score
over the whole store is not a candidate at all (neither shown nor counted in "+N more").

Ranking: relevance of the best matching topic (normalised per topic to 0..1 of the window's
best and rounded to two decimals, so papers of near-equal relevance are ordered by upvotes),
then upvotes, then recency. "+N more" counts each eligible paper once, whatever number of
topics it matched, under the same upvote floor as the picks.
A channel whose people reacted 👍/👎 to its posts (`bot.taste`) has that relevance moved up or
down by how alike a paper is to its 👍 and 👎 papers, among its topics' best few candidates
(`bot.digest_taste`); a channel without reactions is ranked exactly as before.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.aliases import normalize_topic
from bot.digest_floor import Floor
from bot.digest_taste import Taught
from bot.errors import QueryError
from bot.index_schema import paper_time, seconds
from bot.index_window import ABSTRACT, abstract_scores, best_ever, raise_best, window_matches
from bot.models import Paper
from bot.query import parse_query
from bot.store import PaperStore
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


class Facts(NamedTuple):
    """What eligibility reads of a candidate (from the index's fast fields, or its row)."""

    upvotes: int
    announced: int  # seconds since the epoch (0: unknown)
    listed: date | None  # its Daily Papers day (followed by --hf-top)


# A topic never looks at more than this many matches of one window; matches beyond it are
# counted in "+N more" (possibly twice when they match several topics), never shown.
MAX_DEPTH = 2_000
Delivered = Mapping[str, set[str]]


@dataclass(slots=True)
class _Topic:
    """One distinct topic's candidates in the window (above its floor), best first."""

    text: str
    listed: bool = False  # --hf-top: candidates by Daily Papers day, not announcement
    ranked: list[RankKey] = field(default_factory=list)
    relevance: dict[str, float] = field(default_factory=dict)  # id -> relevance 0..1
    extra: int = 0  # candidates beyond MAX_DEPTH: counted in "+N more", never looked at
    _eligible: dict[tuple[datetime, int, datetime | None], frozenset[str]] = field(
        default_factory=dict
    )

    def eligible(self, plan: Plan, facts: Mapping[str, Facts], now: datetime) -> frozenset[str]:
        """The candidates a channel with `plan`'s window and upvote floor may get (before its
        ledger): computed once per (window, floor), shared by every channel that has them."""
        key = (plan.since, plan.min_upvotes, plan.floor)
        found = self._eligible.get(key)
        if found is None:
            low, high = seconds(plan.since - LATE_COMMIT), seconds(now)
            first = seconds(plan.floor) if plan.floor is not None else 0
            day = plan.since.date()
            found = frozenset(
                pid
                for pid in self.relevance
                if (f := facts[pid]).upvotes >= plan.min_upvotes
                and (plan.floor is None or 0 < first <= f.announced)
                and (
                    (f.listed is not None and f.listed >= day)
                    if self.listed
                    else low <= f.announced <= high
                )
            )
            self._eligible[key] = found
        return found


def select_many(
    store: PaperStore, plans: Sequence[Plan], now: datetime, delivered: Delivered | None = None
) -> dict[str, Selection]:
    """Every plan's ranked, capped selection; each distinct topic is searched once.

    The store's index answers each topic for the papers announced since the earliest window
    (ids, scores, upvotes and dates from its fast fields); the matches under the topic's
    relevance floor are dropped; the rest fan out to the channels. Only the papers picked are
    loaded from the store.
    """
    delivered = delivered or {}
    if not plans:
        return {}
    earliest = min(p.since for p in plans) - LATE_COMMIT
    topics = {normalize_topic(t): _Topic(t) for p in plans for t in p.topics}
    facts: dict[str, Facts] = {}
    papers: dict[str, Paper] = {}
    for norm, topic in topics.items():
        if norm == HF_TOP:
            _hf_top(store, topic, earliest, facts, papers)
        else:
            _search_topic(store, topic, earliest, now, facts)
    taught = Taught.load(store, [p.channel_key for p in plans])
    if taught.tastes:  # the words of what tasting channels may compare, read in bulk
        taught.prefetch(_tasted_candidates(plans, topics, taught))
    chosen = _fan_out_all(plans, topics, facts, now, delivered, taught)
    wanted = {pick[0] for picks, _, _ in chosen.values() for pick in picks}
    papers.update((p.id, p) for p in store.get_many(sorted(wanted - papers.keys())))
    made: dict[PickRow, Pick] = {}  # channels share their picks
    out: dict[str, Selection] = {}
    for plan in plans:
        picks, more, _ = chosen[plan.channel_key]
        out[plan.channel_key] = Selection(
            plan.channel_key,
            plan.since,
            [
                made.get(pick) or made.setdefault(pick, _pick(papers, pick))
                for pick in picks
                if pick[0] in papers
            ],
            more,
        )
    return out


def _tasted_candidates(
    plans: Sequence[Plan], topics: Mapping[str, _Topic], taught: Taught
) -> set[str]:
    """The papers channels with a taste may compare (`_tasted`: a few times each one's cap
    from each topic, and some slack for what their ledger holds)."""
    out: set[str] = set()
    for plan in plans:
        if plan.channel_key not in taught.tastes:
            continue
        depth = 2 * (2 * plan.max_papers + 10)
        for text in plan.topics:
            topic = topics.get(normalize_topic(text))
            if topic is not None:
                out.update(key.id for key in topic.ranked[:depth])
    return out


def _pick(papers: Mapping[str, Paper], row: PickRow) -> Pick:
    pid, names, relevance, rank, reason = row
    return Pick(papers[pid], names, relevance, pid, rank, reason)


def _search_topic(
    store: PaperStore, topic: _Topic, since: datetime, now: datetime, facts: dict[str, Facts]
) -> None:
    """A search topic's matches announced in the window, above its floor, ranked."""
    try:
        query = parse_query(topic.text, now)
    except QueryError as exc:  # a topic saved before a grammar change: skip, say so
        logger.warning("topic %r cannot be parsed any more: %s", topic.text, exc)
        return
    if query.is_empty():
        return
    index, aliases = store.search_index(), store.aliases()
    window = window_matches(index, query, aliases, since, now, MAX_DEPTH)
    if not window.matches:
        return
    top = window.matches[0].score or 1.0  # 0.0: nothing scores by text (filters only)
    raise_best(index, query, top)
    floor = Floor(query, max(best_ever(index, query, aliases, now), top))
    if not all(floor.strong(m.score) for m in window.matches):
        scores = abstract_scores(index, query, aliases, since, now, MAX_DEPTH)
        best = max(scores.values(), default=0.0)
        raise_best(index, query, best, ABSTRACT)
        floor.abstracts(scores, max(best_ever(index, query, aliases, now, ABSTRACT), best))
    kept = [m for m in window.matches if floor.passes(m.id, m.score)]
    if len(kept) == len(window.matches):  # none was under the floor: the rest may pass it
        topic.extra = max(window.total - len(kept), 0)
    for m in kept:
        facts.setdefault(m.id, Facts(m.upvotes, m.announced, None))
    topic.relevance = {m.id: m.score / top for m in kept}
    topic.ranked = sorted(
        RankKey(-round(m.score / top, 2), -m.upvotes, -float(m.published), m.id) for m in kept
    )


def _hf_top(
    store: PaperStore,
    topic: _Topic,
    since: datetime,
    facts: dict[str, Facts],
    papers: dict[str, Paper],
) -> None:
    # Lists are whole days: the late-commit look-back must not add the day before.
    listed, total = hf_listed(store, since + LATE_COMMIT, MAX_DEPTH)
    top = max((p.upvotes for p in listed), default=0) or 1
    topic.listed = True
    topic.extra = max(total - len(listed), 0)
    for paper in listed:
        papers.setdefault(paper.id, paper)
        when = aware(paper.announced_at)
        facts[paper.id] = Facts(paper.upvotes, seconds(when) if when else 0, paper.hf_daily_date)
    topic.relevance = {p.id: p.upvotes / top for p in listed}
    topic.ranked = sorted(
        RankKey(-round(p.upvotes / top, 2), -p.upvotes, -paper_time(p).timestamp(), p.id)
        for p in listed
    )


def _fan_out_all(
    plans: Sequence[Plan],
    topics: Mapping[str, _Topic],
    facts: Mapping[str, Facts],
    now: datetime,
    delivered: Delivered,
    taught: Taught,
) -> dict[str, Chosen]:
    """Every channel's picks and "+N more". Channels with the same topics, window and budget,
    no taste, and no candidate in their ledger get the same answer: computed once."""
    texts = {text for plan in plans for text in plan.topics}
    found = {
        text: (topic_label(text), topic)
        for text in texts
        if (topic := topics.get(normalize_topic(text))) is not None
    }
    memo: dict[tuple[object, ...], Chosen] = {}
    out: dict[str, Chosen] = {}
    for plan in plans:
        done = delivered.get(plan.channel_key, set())
        mine = [found[text] for text in plan.topics if text in found]
        if plan.channel_key in taught.tastes:
            out[plan.channel_key] = _fan_out(plan, mine, facts, now, done, taught)
            continue
        same = (plan.topics, plan.since, plan.min_upvotes, plan.max_papers, plan.floor)
        known = memo.get(same)
        if known is not None and (not done or known[2].isdisjoint(done)):
            out[plan.channel_key] = known
            continue
        answer = out[plan.channel_key] = _fan_out(plan, mine, facts, now, done)
        if not done or answer[2].isdisjoint(done):
            memo[same] = answer
    return out


# A pick before its row is loaded: id, the topics it matched, relevance, the relevance as the
# channel's taste moved it (None: not moved), why.
PickRow = tuple[str, tuple[str, ...], float, float | None, str]
Chosen = tuple[list[PickRow], int, frozenset[str]]


def _fan_out(
    plan: Plan,
    found: Sequence[tuple[str, _Topic]],
    facts: Mapping[str, Facts],
    now: datetime,
    done: set[str],
    taught: Taught | None = None,
) -> Chosen:
    """One channel's picks, its "+N more", and its candidates (before its ledger)."""
    eligible = [topic.eligible(plan, facts, now) for _, topic in found]

    def ok(pid: str) -> bool:
        return pid not in done and any(pid in e for e in eligible)

    if taught is None:
        picks = _merged(plan, found, ok)
    else:
        picks = _tasted(plan, found, ok, taught)
    union: frozenset[str] = frozenset().union(*eligible) if len(eligible) != 1 else eligible[0]
    already = (
        sum(1 for pid in done if pid in union) if len(done) < len(union) else len(union & done)
    )
    more = len(union) - already - len(picks) + sum(topic.extra for _, topic in found)
    return picks, more, union


def _merged(
    plan: Plan, found: Sequence[tuple[str, _Topic]], ok: Callable[[str], bool]
) -> list[PickRow]:
    """The k-way merge of the per-topic rankings: a paper's first appearance is its best."""
    picks: list[PickRow] = []
    taken: set[str] = set()
    for key in heapq.merge(*(topic.ranked for _, topic in found)):
        if len(picks) >= plan.max_papers:
            break
        pid = key.id
        if pid in taken or not ok(pid):
            continue
        taken.add(pid)
        names = tuple(name for name, topic in found if pid in topic.relevance)
        picks.append((pid, names, -key.relevance, None, ""))
    return picks


def _tasted(
    plan: Plan, found: Sequence[tuple[str, _Topic]], ok: Callable[[str], bool], taught: Taught
) -> list[PickRow]:
    """A channel with a taste: its topics' best few candidates (a few times its cap each, as
    a digest without taste would look at), ranked with the taste's moves."""
    depth = 2 * plan.max_papers + 10
    best: dict[str, RankKey] = {}
    for _, topic in found:
        seen = 0
        for key in topic.ranked:
            if seen >= depth:
                break
            if not ok(key.id):
                continue
            seen += 1
            if key.id not in best or key < best[key.id]:
                best[key.id] = key
    taught.prefetch(best)  # the few a prefetch for all channels did not cover
    scorer = taught.scorer(plan.channel_key)
    moves = {pid: scorer.move(pid) for pid in best}
    moved = sorted(
        (key._replace(relevance=-round(-key.relevance + moves[pid], 2)), pid)
        for pid, key in best.items()
    )
    return [
        (
            pid,
            tuple(name for name, topic in found if pid in topic.relevance),
            -best[pid].relevance,
            -best[pid].relevance + moves[pid],
            scorer.reason(pid, moves[pid]),  # reasons for the picks only
        )
        for _, pid in moved[: plan.max_papers]
    ]
