"""Follow-ups in the original thread: when a paper posted in a channel in the last 30 days
gets news (code released, a new arXiv version, a venue, an upvote or star threshold), one
reply goes into that post's thread, once per (channel, paper, kind, threshold).

Two steps on every digest tick (bot/delivery.py):

1. `scan`: read the paper events past the shared cursor (`PaperStore.events_since`, commit
   order), find the posts that carried those papers (the delivery ledger's `message_ref`),
   and queue one row per reply in the SAME transaction that moves the cursor, with a
   compare-and-set on the cursor: two instances never both queue a page, a crash before the
   commit leaves both as they were (the page is read again), and one after it leaves the
   queued rows to post. Never twice (the rows are unique), never skipped (the cursor moves
   only with them).
2. `post_due`: take queued replies (claim with a lease), count the attempt, post with
   `Reply.thread_of` = the parent's ref, mark the outcome (bot/followup_ledger.py). Unknown
   outcomes are checked with the platform (Slack `conversations.replies`, wave2.md ST-4;
   Discord a resend with the same nonce) and never blindly resent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from bot.errors import DeliveryError
from bot.followup_ledger import FollowUpLedger, Taken, recent_posts
from bot.followup_news import FOLLOW_DAYS, NewsItem, followup_reply, news, week_start
from bot.messages import ChannelRef
from bot.models import Paper
from bot.ports import FOUND, LATER, RESEND, Outbox, Reconciled
from bot.store import PaperStore

logger = logging.getLogger(__name__)

READER = "followups"  # this reader's row in event_cursor
# Events per transaction. A news event about a paper posted in many channels queues a reply
# for each: 100 events can queue ~30,000 replies (bench/followups.py), a write transaction of
# a few seconds; 500 held SQLite's write lock for ~15 s, past other writers' busy timeout.
PAGE = 100
MAX_PAGES = 50  # per tick; the rest waits for the next tick
MAX_ATTEMPTS = 5  # a reply rejected this often is given up
DEFAULT_RETRY = timedelta(minutes=5)
POST_CONCURRENCY = 8  # replies in flight (adapters pace each channel themselves)
_PAPER = Paper.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class FollowUpReport:
    queued: int = 0
    posted: int = 0
    failed: int = 0
    unknown: int = 0
    orphaned: int = 0


def rows_for(
    items: list[NewsItem],
    posts: list[tuple[str, str, str, datetime]],
    held: dict[tuple[str, str, str], int],
    gone: set[tuple[str, str]],
    now: datetime,
) -> list[dict[str, Any]]:
    """One queued row per post and news item about its paper that happened after the post:
    not for a parent found deleted, not below a threshold already told."""
    by_paper: dict[str, list[NewsItem]] = {}
    for item in items:
        by_paper.setdefault(item.paper_id, []).append(item)
    rows = []
    for key, pid, ref, sent_at in posts:
        if (key, ref) in gone:
            continue
        for item in by_paper.get(pid, ()):
            if item.at <= sent_at or held.get((key, pid, item.kind), -1) >= item.level:
                continue
            rows.append(
                {
                    "channel_key": key,
                    "paper_id": pid,
                    "kind": item.kind,
                    "level": item.level,
                    "detail": (item.detail or "")[:500] or None,
                    "parent_ref": ref,
                    "status": "queued",
                    "event_id": item.event_id,
                    "attempts": 0,
                    "retry_at": now,
                    "created_at": now,
                }
            )
    return rows


def scan(store: PaperStore, ledger: FollowUpLedger, now: datetime) -> int:
    """Queue the replies the new paper events call for (blocking: run it in a thread).
    Returns how many were queued by this call."""
    queued = 0
    for _ in range(MAX_PAGES):
        cursor = ledger.cursor(READER)
        page = store.events_since(cursor, PAGE)
        if not page.events:
            break  # caught up: nothing to write (the next read starts here, as cheaply)
        items = news(page.events, now)
        rows: list[dict[str, Any]] = []
        if items:
            papers = [i.paper_id for i in items]
            posts = recent_posts(ledger.engine, papers, now - FOLLOW_DAYS)
            if posts:
                rows = rows_for(items, posts, ledger.held(papers), ledger.gone_parents(), now)
        added = ledger.advance(READER, cursor, page.cursor, rows, now)
        if added is None:
            break  # another instance read this page
        queued += added
        if len(page.events) < PAGE:
            break
    return queued


def hf_rank(store: PaperStore, paper: Paper, now: datetime) -> int | None:
    """The paper's place on Hugging Face's list of this week (by upvotes), or None when it
    is not on this week's list. One indexed count over a week of daily papers."""
    start = week_start(now).date()
    if paper.hf_daily_date is None or paper.hf_daily_date < start:
        return None
    stmt = (
        select(func.count())
        .select_from(_PAPER)
        .where(
            _PAPER.c.hf_daily_date >= start,
            _PAPER.c.hf_daily_date <= now.date(),
            _PAPER.c.upvotes > paper.upvotes,
        )
    )
    with Session(store.engine) as session:
        return int(session.execute(stmt).scalar_one()) + 1


async def tick(store: PaperStore, outbox: Outbox, now: datetime) -> FollowUpReport:
    """The follow-ups' part of a digest tick; a failure is logged, never stops the digests
    (the next tick tries again: the ledger has every step)."""
    try:
        report = await post_due(store, FollowUpLedger(store.engine), outbox, now)
    except Exception:
        logger.exception("follow-ups failed this tick")
        return FollowUpReport()
    if report.posted or report.queued:
        logger.info("follow-ups: %s", report)
    return report


async def post_due(
    store: PaperStore, ledger: FollowUpLedger, outbox: Outbox, now: datetime
) -> FollowUpReport:
    """Recover dead owners' replies, check unknown ones, queue what the new events call for,
    then post the due replies (a few at a time, as digests are)."""
    tick = _Tick(store, ledger, outbox, now, FollowUpReport())
    platforms = sorted(outbox.adapters)
    await asyncio.to_thread(ledger.recover_stale, now)
    for taken in await asyncio.to_thread(ledger.take_unknown, now, platforms):
        await _check(tick, taken)
    tick.report.queued = await asyncio.to_thread(scan, store, ledger, now)
    gate = asyncio.Semaphore(POST_CONCURRENCY)

    async def one(taken: Taken) -> None:
        async with gate:
            if await asyncio.to_thread(ledger.begin_attempt, taken):
                await _post(tick, taken)

    due = await asyncio.to_thread(ledger.take_due, now, platforms)
    await asyncio.gather(*(one(taken) for taken in due))
    return tick.report


@dataclass(frozen=True, slots=True)
class _Tick:
    """What posting one tick's replies works with (the report is filled in as it goes)."""

    store: PaperStore
    ledger: FollowUpLedger
    outbox: Outbox
    now: datetime
    report: FollowUpReport


async def _check(tick: _Tick, taken: Taken) -> None:
    """Ask the platform whether an unknown reply landed in its thread."""
    ledger, outbox, now = tick.ledger, tick.outbox, tick.now
    try:
        result = await outbox.reconcile(
            ChannelRef.parse(taken.channel_key),
            taken.key,
            posted_at=taken.lease,
            now=now,
            attempts=taken.attempts,
            thread_of=taken.parent_ref,
        )
    except Exception as exc:  # an adapter bug must not stop the tick
        logger.exception("checking the unknown reply %s failed", taken.key)
        result = Reconciled(LATER, note=repr(exc))
    changed = await asyncio.to_thread(ledger.settle, taken, result, now)
    logger.info("unknown reply %s: %s %s", taken.key, result.state, result.note)
    if changed and result.state == RESEND:
        await _post(tick, taken)
    elif changed and result.state == FOUND:
        tick.report.posted += 1


async def _post(tick: _Tick, taken: Taken) -> None:
    """Post one reply whose attempt is counted, and record what happened."""
    store, ledger, now, report = tick.store, tick.ledger, tick.now, tick.report
    paper = await asyncio.to_thread(store.get, taken.paper_id)
    if paper is None:
        await asyncio.to_thread(ledger.rejected, taken.id, "the paper left the store", None)
        return
    rank = await asyncio.to_thread(hf_rank, store, paper, now) if taken.kind == "upvotes" else None
    reply = followup_reply(taken.kind, taken.level, taken.detail, paper, taken.parent_ref, rank)
    try:
        ref = await tick.outbox.send(
            ChannelRef.parse(taken.channel_key), reply, idempotency_key=taken.key
        )
    except DeliveryError as exc:
        await asyncio.to_thread(_failed, ledger, taken, exc, now, report)
        if exc.gone and not exc.parent_gone:
            await asyncio.to_thread(store.pause_unreachable, taken.channel_key, str(exc), now)
        return
    except Exception as exc:  # an adapter bug: it may have posted
        logger.exception("replying in %s raised; the reply is unknown", taken.channel_key)
        await asyncio.to_thread(ledger.unknown, taken.id, f"adapter error: {exc!r}", now)
        report.unknown += 1
        return
    await asyncio.to_thread(ledger.sent, taken.id, ref, now)
    report.posted += 1


def _failed(
    ledger: FollowUpLedger,
    taken: Taken,
    exc: DeliveryError,
    now: datetime,
    report: FollowUpReport,
) -> None:
    if exc.parent_gone:
        ledger.orphaned(taken, str(exc))
        logger.info("reply %s: the post %s is gone (%s)", taken.key, taken.parent_ref, exc)
        report.orphaned += 1
    elif exc.ambiguous:
        ledger.unknown(taken.id, f"ambiguous: {exc}", now)
        report.unknown += 1
    else:
        wait = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else DEFAULT_RETRY
        final = exc.final or exc.gone or taken.attempts + 1 >= MAX_ATTEMPTS
        ledger.rejected(taken.id, str(exc), None if final else now + wait)
        report.failed += 1
