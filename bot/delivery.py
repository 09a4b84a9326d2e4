"""The digest tick: build, claim (`bot.delivery_open`) and post every due digest through the
ledger, and what each post's outcome does to it.

Each tick recovers dead owners' claims, checks posts whose outcome is unknown, re-posts what
waited long enough after a rejection, then selects, ranks and claims every due channel's
digest in one transaction (`bot.ledger.Ledger.open_runs`) and posts them. The ledger's
protocol (why nothing is posted twice, nothing silently lost) is described in bot/ledger.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

from bot import followups
from bot.delivery_open import open_due, open_now, retry_reply
from bot.errors import DeliveryError
from bot.followups import FollowUpReport
from bot.ledger import (
    FAILED,
    SENT,
    UNKNOWN,
    Ledger,
    Outgoing,
)
from bot.messages import ChannelRef
from bot.ports import ABSENT, FOUND, LATER, RESEND, Outbox, Reconciled
from bot.store import PaperStore

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # then a rejected digest stays `failed` for an operator to look at
DEFAULT_RETRY = timedelta(minutes=5)  # a clear rejection without Retry-After
POST_CONCURRENCY = 8  # posts in flight per tick (adapters pace each channel themselves)


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
        store.pause_unreachable(key, str(exc), now)
        ledger.mark(key, papers, FAILED, now, error=f"gone: {exc}")
        ledger.finish_run(out.run_id, "failed", 0, now)
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
