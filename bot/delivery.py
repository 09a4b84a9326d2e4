"""The digest tick: build, claim and post every due digest through the ledger.

Each tick recovers dead owners' claims, checks posts whose outcome is unknown, re-posts what
waited long enough after a rejection, then selects, ranks and claims every due channel's
digest in one transaction (`bot.ledger.Ledger.open_runs`) and posts them. The ledger's
protocol (why nothing is posted twice, nothing silently lost) is described in bot/ledger.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple

from sqlalchemy import select
from sqlmodel import Session

from bot import digest, followups
from bot.db import chunks
from bot.errors import DeliveryError
from bot.followups import FollowUpReport
from bot.ledger import (
    FAILED,
    SENT,
    UNKNOWN,
    Ledger,
    Outgoing,
    OwnedRun,
    RunRequest,
    digest_key,
)
from bot.messages import ChannelRef, Reply, is_direct_key
from bot.models import Channel, SourceState, Subscription
from bot.ports import ABSENT, FOUND, LATER, RESEND, Outbox, Reconciled
from bot.store import PaperStore
from bot.times import aware
from bot.watches import first_watched, floored

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # then a rejected digest stays `failed` for an operator to look at
DEFAULT_RETRY = timedelta(minutes=5)  # a clear rejection without Retry-After
POST_CONCURRENCY = 8  # posts in flight per tick (adapters pace each channel themselves)

_CHANNEL = Channel.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class DeliveryReport:
    digests: int = 0  # digest runs built by this instance
    messages: int = 0  # posts the platform accepted
    papers_sent: int = 0
    empty: int = 0  # runs with nothing new (quiet channels post nothing)
    skipped: int = 0  # slots another instance (or an earlier run) owns
    retried: int = 0  # posts of papers whose earlier post was rejected
    failed: int = 0  # papers left `failed` (retried later unless final)
    unknown: int = 0  # papers whose post may or may not have happened
    confirmed: int = 0  # unknown papers found posted after all
    reposted: int = 0  # unknown papers found missing, queued again (or resent)
    paused: list[str] = field(default_factory=list)
    followups: FollowUpReport = field(default_factory=FollowUpReport)

    def summary(self) -> str:
        return (
            f"{self.digests} digests, {self.messages} messages, {self.papers_sent} papers sent, "
            f"{self.empty} empty, {self.skipped} owned elsewhere, {self.retried} retries, "
            f"{self.failed} failed, {self.unknown} unknown"
            + (f", {self.confirmed} confirmed" if self.confirmed else "")
            + (f", {self.reposted} re-posted" if self.reposted else "")
            + (f", paused: {', '.join(self.paused)}" if self.paused else "")
            + (f", {self.followups.posted} follow-ups" if self.followups.posted else "")
        )


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


async def post_now(
    store: PaperStore, ledger: Ledger, outbox: Outbox, channel_key: str, now: datetime
) -> DeliveryReport | None:
    """Post this channel's digest now (`/papers digest post`): built, claimed and posted
    like a scheduled one. None when the channel follows no topics; else what happened
    (`messages` 1 when the platform took it)."""
    out = await asyncio.to_thread(open_now, store, ledger, channel_key, now)
    if out is None:
        return None
    report = DeliveryReport(digests=1)
    await post_one(store, ledger, outbox, out, now, report)
    return report


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


async def deliver_due(
    store: PaperStore, ledger: Ledger, outbox: Outbox, now: datetime
) -> DeliveryReport:
    """One tick: recover dead owners' claims, re-post what waited long enough, then build,
    claim and post every due digest. Database work runs in a thread (the loop keeps
    answering commands)."""
    report = DeliveryReport()
    await asyncio.to_thread(ledger.recover_stale, now)
    platforms = sorted(outbox.adapters)
    await reconcile_unknown(store, ledger, outbox, now, report)
    retries = await asyncio.to_thread(ledger.take_retries, now, platforms)
    for out in retries:
        out.make_reply = partial(retry_reply, store, out, now)
    report.retried = len(retries)
    due = await asyncio.to_thread(open_due, store, ledger, now, platforms)
    report.digests, report.skipped = len(due.posts), due.elsewhere
    await post_all(store, ledger, outbox, [*retries, *due.posts], now, report)
    report.followups = await followups.tick(store, outbox, now)
    if report.digests or report.retried or report.skipped or report.confirmed or report.reposted:
        logger.info("digest tick: %s", report.summary())
    return report


async def reconcile_unknown(
    store: PaperStore, ledger: Ledger, outbox: Outbox, now: datetime, report: DeliveryReport
) -> None:
    """Ask the platform about posts whose outcome is unknown (platforms.md R-3): found ->
    `sent`; certainly missing -> queued again (this tick's retries post it); a platform that
    dedupes a resend (Discord's nonce) -> resent now with the same key; otherwise the row
    waits for an operator, and `/papers status` says so."""
    posts = await asyncio.to_thread(ledger.take_unknown, now, sorted(outbox.adapters))
    for post in posts:
        channel = ChannelRef.parse(post.channel_key)
        try:
            result = await outbox.reconcile(
                channel,
                post.idempotency_key,
                posted_at=post.posted_at,
                now=now,
                attempts=post.attempts,
            )
        except Exception as exc:  # an adapter bug must not stop the tick
            logger.exception("checking an unknown post to %s failed", post.channel_key)
            result = Reconciled(LATER, note=repr(exc))
        papers = await asyncio.to_thread(ledger.settle_unknown, post, result, now)
        logger.info(
            "unknown post %s to %s: %s %s",
            post.idempotency_key,
            post.channel_key,
            result.state,
            result.note,
        )
        if result.state == FOUND:
            report.confirmed += len(papers)
        elif result.state == ABSENT:
            report.reposted += len(papers)
        elif result.state == RESEND and papers:
            out = Outgoing(
                post.run_id, post.channel_key, None, papers, post.idempotency_key, now, retry=True
            )
            out.make_reply = partial(retry_reply, store, out, now)
            report.reposted += len(papers)
            await post_one(store, ledger, outbox, out, now, report)


async def post_all(
    store: PaperStore,
    ledger: Ledger,
    outbox: Outbox,
    outgoing: Sequence[Outgoing],
    now: datetime,
    report: DeliveryReport,
) -> None:
    gate = asyncio.Semaphore(POST_CONCURRENCY)

    async def one(out: Outgoing) -> None:
        async with gate:
            await post_one(store, ledger, outbox, out, now, report)

    await asyncio.gather(*(one(out) for out in outgoing))


async def post_one(
    store: PaperStore,
    ledger: Ledger,
    outbox: Outbox,
    out: Outgoing,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Steps 3-4 for one post."""
    if out.reply is None:
        assert out.make_reply is not None
        out.reply = await asyncio.to_thread(out.make_reply)
    papers = out.paper_ids
    if papers and not out.retry:
        papers = await asyncio.to_thread(ledger.begin_attempt, out)
        if not papers:
            return  # taken over meanwhile (we were presumed dead): the new owner posts
        if len(papers) < len(out.paper_ids):
            keep = set(papers)
            out.reply = replace(out.reply, cards=tuple(c for c in out.reply.cards if c.id in keep))
    elif not papers:
        report.empty += 1
    try:
        ref = await outbox.send(
            ChannelRef.parse(out.channel_key), out.reply, idempotency_key=out.idempotency_key
        )
    except DeliveryError as exc:
        await asyncio.to_thread(_failed, store, ledger, out, papers, exc, now, report)
        return
    except Exception as exc:  # an adapter bug: we cannot know whether it posted
        logger.exception("posting to %s raised; marking its papers unknown", out.channel_key)
        await asyncio.to_thread(
            ledger.mark,
            out.channel_key,
            papers,
            UNKNOWN,
            now,
            error=f"adapter error: {exc!r}",
            retry_at=now,
        )
        report.unknown += len(papers)
        return
    await asyncio.to_thread(ledger.mark, out.channel_key, papers, SENT, now, message_ref=ref)
    await asyncio.to_thread(
        ledger.finish_run, out.run_id, "done" if papers else "empty", len(papers), now
    )
    report.messages += 1
    report.papers_sent += len(papers)


def _failed(
    store: PaperStore,
    ledger: Ledger,
    out: Outgoing,
    papers: list[str],
    exc: DeliveryError,
    now: datetime,
    report: DeliveryReport,
) -> None:
    key = out.channel_key
    if exc.gone:
        # A user's DM (personal watches): paused until their next `/papers watch(es)`.
        direct = is_direct_key(key)
        where = "cannot DM you" if direct else "the bot cannot post here"
        reason = f"{where} ({exc}); since {now:%Y-%m-%d %H:%M} UTC"
        store.update_channel(key, paused_reason=reason)
        ledger.mark(key, papers, FAILED, now, error=f"gone: {exc}")
        ledger.finish_run(out.run_id, "failed", 0, now)
        logger.warning("%s to %s are PAUSED: %s", "watch DMs" if direct else "digests", key, reason)
        report.paused.append(key)
        report.failed += len(papers)
        return
    if exc.ambiguous:
        ledger.mark(key, papers, UNKNOWN, now, error=f"ambiguous: {exc}", retry_at=now)
        ledger.finish_run(out.run_id, "unknown", 0, now)
        logger.warning(
            "post to %s is UNKNOWN (%s); its %d papers are not re-posted", key, exc, len(papers)
        )
        report.unknown += len(papers)
        return
    wait = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else DEFAULT_RETRY
    attempts = ledger.attempts(key, papers)
    final = attempts >= MAX_ATTEMPTS or exc.final
    ledger.mark(
        key, papers, FAILED, now, error=str(exc)[:500], retry_at=None if final else now + wait
    )
    if not papers:
        ledger.finish_run(out.run_id, "failed", 0, now)
    report.failed += len(papers)
    if final:
        logger.error(
            "giving up on %d papers for %s after %d attempts: %s", len(papers), key, attempts, exc
        )
    else:
        logger.info("post to %s rejected (%s); retrying after %s", key, exc, wait)
