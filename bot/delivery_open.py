"""Due digests built and claimed: which channels are due, their topics, each digest selected
and ranked, and its papers claimed in the ledger (`open_due` for a tick, `open_now` for
`/papers digest post`, `retry_reply` for a rejected post rebuilt). Blocking database work:
`bot.delivery` runs it in a thread and posts what it opens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import NamedTuple

from sqlalchemy import select
from sqlmodel import Session

from bot import digest
from bot.db import chunks
from bot.ledger import (
    Ledger,
    Outgoing,
    OwnedRun,
    RunRequest,
    digest_key,
)
from bot.messages import Reply, is_direct_key
from bot.models import Channel, SourceState, Subscription
from bot.store import PaperStore
from bot.times import aware
from bot.watches import first_watched, floored

_CHANNEL = Channel.__table__  # type: ignore[attr-defined]


def due_channels(store: PaperStore, now: datetime) -> list[digest.DueChannel]:
    """Channels whose slot has come, as plain rows (an ORM load of thousands is slow)."""
    fields = digest.DueChannel.FIELDS
    stmt = select(*(_CHANNEL.c[name] for name in fields)).where(
        _CHANNEL.c.schedule != "off",
        _CHANNEL.c.paused_reason.is_(None),
        _CHANNEL.c.next_digest_at.is_not(None),
        _CHANNEL.c.next_digest_at <= now,
    )
    with Session(store.engine) as session:
        rows = session.execute(stmt).all()
    return [digest.DueChannel(*row) for row in rows]


def topics_of(store: PaperStore, keys: Sequence[str]) -> dict[str, list[str]]:
    """channel -> its topics as typed, in the order they were added."""
    table = Subscription.__table__  # type: ignore[attr-defined]
    out: dict[str, list[str]] = defaultdict(list)
    for chunk in chunks(list(keys), 5_000):
        stmt = (
            select(table.c.channel_key, table.c.query)
            .where(table.c.channel_key.in_(chunk))
            .order_by(table.c.id)
        )
        with Session(store.engine) as session:
            for key, query in session.execute(stmt):
                out[key].append(query)
    return out


class DueDigests(NamedTuple):
    """What one tick opened: the posts this instance owns, and how many due slots another
    owner (an instance, or an earlier run) had."""

    posts: list[Outgoing]
    elsewhere: int


@dataclass(slots=True)
class _DuePlans:
    """Due channels' plans for this tick, and where each channel's schedule moves on to."""

    plans: list[digest.Plan] = field(default_factory=list)
    slots: dict[str, datetime] = field(default_factory=dict)
    channels: dict[str, digest.DueChannel] = field(default_factory=dict)
    advance: dict[str, datetime | None] = field(default_factory=dict)


def _due_plans(store: PaperStore, now: datetime, platforms: Iterable[str] | None) -> _DuePlans:
    channels = due_channels(store, now)
    if platforms is not None:
        allowed = set(platforms)
        channels = [c for c in channels if c.key.split(":", 1)[0] in allowed]
    due = _DuePlans(channels={c.key: c for c in channels})
    subs = topics_of(store, [c.key for c in channels])
    floors = first_watched(store, [c.key for c in channels if is_direct_key(c.key)])
    for channel in channels:
        slot = digest.due_slot(channel, now)
        due.advance[channel.key] = digest.schedule_of(channel).next_slot(now)
        if slot is None or not subs.get(channel.key):
            continue  # no topics: nothing to build, the schedule just moves on
        due.slots[channel.key] = slot
        plan = digest.plan_for(channel, subs[channel.key], slot)
        due.plans.append(replace(plan, floor=floors.get(channel.key)))
    return due


def open_due(
    store: PaperStore,
    ledger: Ledger,
    now: datetime,
    platforms: Iterable[str] | None = None,
) -> DueDigests:
    """Select, rank and claim every due channel's digest (blocking; run it in a thread).

    `platforms`: only channels this instance can post to (an instance without the Discord
    adapter leaves Discord channels to one that has it).
    """
    due = _due_plans(store, now, platforms)
    if not due.channels:
        return DueDigests([], 0)
    plans = due.plans
    since = min((p.since for p in plans), default=now)
    delivered = ledger.delivered([p.channel_key for p in plans], since)
    selections = digest.select_many(store, plans, now, delivered)
    runs = [
        RunRequest(p.channel_key, due.slots[p.channel_key], selections[p.channel_key].paper_ids)
        for p in plans
    ]
    owned = ledger.open_runs(runs, now, advance=due.advance)
    states = store.source_states() if owned else []
    outgoing = []
    for plan in plans:
        run = owned.get(plan.channel_key)
        if run is None:
            continue
        channel = due.channels[plan.channel_key]
        selection = _kept(selections[plan.channel_key], run)
        if not run.paper_ids and (channel.quiet or selection is None):
            # Nothing new and the channel asked for silence; or every paper was claimed
            # meanwhile by a manual `digest post`: not posted twice.
            ledger.finish_run(run.run_id, "done" if selection is None else "empty", 0, now)
            continue
        assert selection is not None
        outgoing.append(
            Outgoing(
                run.run_id,
                plan.channel_key,
                None,
                run.paper_ids,
                digest_key(run.run_id),
                now,
                make_reply=partial(_reply_of, channel, selection, now, states, plan.topics),
            )
        )
    return DueDigests(outgoing, len(plans) - len(owned))


def _kept(selection: digest.Selection, run: OwnedRun) -> digest.Selection | None:
    """The selection cut to the papers the run won; None if it lost every one it had."""
    if len(selection.picks) == len(run.paper_ids):
        return selection
    if not run.paper_ids:
        return None
    keep = set(run.paper_ids)
    return replace(selection, picks=[p for p in selection.picks if p.id in keep])


def _reply_of(
    channel: digest.ChannelSettings,
    selection: digest.Selection,
    now: datetime,
    states: Sequence[SourceState],
    topics: Sequence[str],
) -> Reply:
    reply = digest.digest_reply(channel, selection, now, states, topics=topics, quiet=False)
    assert reply is not None
    return reply


def open_now(store: PaperStore, ledger: Ledger, channel_key: str, now: datetime) -> Outgoing | None:
    """`/papers digest post`: this channel's digest now, through the ledger, as its own run
    (slot = now). The schedule is left as it is: the next scheduled digest skips what this one
    delivered."""
    channel = store.channel(channel_key)
    subs = store.subscriptions(channel_key)
    if channel is None or not subs:
        return None
    plan = digest.plan_for(channel, [s.query for s in subs], digest.due_slot(channel, now) or now)
    plan = floored(store, plan)
    delivered = ledger.delivered([channel_key])
    selection = digest.select_many(store, [plan], now, delivered)[channel_key]
    owned = ledger.open_runs(
        [RunRequest(channel_key, now, selection.paper_ids)], now, scheduled=False
    )
    run = owned.get(channel_key)
    if run is None:
        return None
    keep = set(run.paper_ids)
    selection = replace(selection, picks=[p for p in selection.picks if p.id in keep])
    reply = digest.digest_reply(
        channel, selection, now, store.source_states(), topics=plan.topics, quiet=False
    )
    assert reply is not None
    return Outgoing(run.run_id, channel_key, reply, run.paper_ids, digest_key(run.run_id), now)


def retry_reply(store: PaperStore, out: Outgoing, now: datetime) -> Reply:
    """The digest of papers whose earlier post was rejected, rebuilt from the store (their
    topics are matched again: the ledger keeps papers, not messages)."""
    channel = store.channel(out.channel_key)
    subs = store.subscriptions(out.channel_key)
    papers = store.get_many(out.paper_ids)
    topics = tuple(s.query for s in subs)
    since = min((aware(p.announced_at) or now for p in papers), default=now)
    plan = digest.Plan(out.channel_key, topics, since, max_papers=len(papers) or 1)
    picked = digest.select_many(store, [plan], now, {})[out.channel_key]
    by_id = {p.id: p for p in picked.picks}
    picks = [by_id.get(p.id) or digest.Pick(p, (), 0.0) for p in papers]
    selection = digest.Selection(out.channel_key, since, picks, 0)
    assert channel is not None
    reply = digest.digest_reply(channel, selection, now, topics=topics, quiet=False)
    assert reply is not None
    return reply
