"""Personal watches: `/papers watch <query>` for the person who typed it, delivered as at most one
direct message a day.

A watch is a topic of the user's own direct-message "channel", `platform:workspace:@<user id>`
(`Invocation.direct`, the shared convention for DMs), so the digest pipeline delivers it
unchanged. That `Channel` row holds the schedule: daily, after `WATCH_TIME` UTC (the first
digest tick after it) unless the user sets a time with `/papers watches at 18:30
America/New_York`. It also holds `quiet` (a day with nothing new sends nothing) and, when the
platform says the user cannot be messaged, `paused_reason`. The ledger's `Delivery` rows are
keyed (user, paper), claimed before the post, and an unknown outcome is never resent
blindly. The adapters open the DM (Slack `conversations.open`, Discord `User.create_dm`).

A user's watches are seen and changed only by that user (every command here reads the
invoker's own key), in any channel, with no channel permission. The first message covers the
papers announced since the first watch was made (no backlog); each later one, those since the
previous one. A user the platform cannot message is paused after one failure, not retried;
their next `/papers watch` or `/papers watches` resumes it (they are evidently around).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from bot import digest as digests, topic_preview
from bot.aliases import normalize_topic
from bot.command_context import Context, chosen_topic, standing_query_error, topic_lines
from bot.db import chunks
from bot.errors import QueryError
from bot.messages import Reply, error, info, is_direct_key
from bot.models import Channel, Subscription
from bot.schedules import Schedule, ScheduleError, parse_time, parse_zone
from bot.store import PaperStore
from bot.times import aware, local_label

MAX_WATCHES = 20  # per user: a watch list, not a second search engine
WATCH_TIME = "08:00"  # UTC: the daily direct message goes out at the first tick after this
SCHEDULE = Schedule.from_stored("daily", WATCH_TIME, "UTC")
# Moving the time never brings the next message closer than this to the previous one (or to
# the first watch): at most one a day, whatever the old and new time zones.
MIN_GAP = timedelta(hours=20)
PAUSED = "paused: cannot DM you"
HOW_TO = (
    "`/papers watches` lists your watches; `/papers unwatch N` stops one; "
    "`/papers watches at 18:30 America/New_York` sets when the message comes."
)
AT_EXAMPLE = (
    "`/papers watches at 07:30 Europe/Berlin` (HH:MM, then a time zone; without one, the zone "
    "you had, UTC at first)"
)


def when(schedule: Schedule) -> str:
    """What `/papers watch` says about the daily message."""
    return (
        f"Once a day, after {schedule.at:%H:%M} {schedule.timezone}, I send you a direct message "
        "with the new papers that match any of your watches (nothing on a day without any)."
    )


async def do_watch(ctx: Context, text: str) -> Reply:
    query = " ".join(text.split())
    problem = _bad_watch(ctx, query)
    if problem is not None:
        return problem
    if digests.is_hf_top(query):
        query = digests.HF_TOP
    key = ctx.inv.direct.key
    subs = ctx.store.subscriptions(key)
    wanted = normalize_topic(query)
    if not any(s.normalized == wanted for s in subs) and len(subs) >= MAX_WATCHES:
        return error(
            f"You already have {MAX_WATCHES} watches, the most one person can have.",
            "Stop one first with `/papers unwatch N` (numbers in `/papers watches`).",
        )
    resumed = _ready(ctx, restart=not subs)
    sub, created = ctx.store.subscribe(key, query, ctx.now, user=ctx.inv.user.user_id)
    shown = digests.topic_label(sub.query)
    lines = [when(_schedule(ctx.store.channel(key)))] if created else []
    if resumed:
        lines.append("Your watches were paused (I could not message you); I will try again.")
    lines.append(f"Only you can see your watches. {HOW_TO}")
    if created and not digests.is_hf_top(sub.query):
        lines += topic_preview.preview(ctx.store, sub.query, ctx.now).lines()
    title = f"Watching {shown} for you." if created else f"You already watch {shown}."
    return info(title, "\n".join(lines))


def _bad_watch(ctx: Context, query: str) -> Reply | None:
    """A one-line answer for a watch that cannot be made, else None."""
    if not query:
        return error(
            "Watch what?",
            "Give a search, for example `/papers watch author:rafailov` or "
            "`/papers watch dpo has:code`.",
        )
    return standing_query_error(query, ctx.now, "watch", "/papers watch")


def _schedule(channel: Channel | None) -> Schedule:
    """When a user's daily message comes: the time they chose, else `WATCH_TIME` UTC."""
    if channel is None:
        return SCHEDULE
    return Schedule.from_stored(SCHEDULE.stored_kind, channel.digest_time, channel.timezone)


def _ready(ctx: Context, *, restart: bool) -> bool:
    """The user's DM channel row, made or put back in shape; True if it was paused (this
    command resumes it). `restart`: no watches yet, so the first message covers papers from
    now on (no backlog of the weeks since an earlier watch was removed). The time is the one
    the user chose, else `WATCH_TIME` UTC."""
    key = ctx.inv.direct.key
    now = ctx.now
    daily = _schedule(ctx.store.channel(key))
    settings = {
        "schedule": daily.stored_kind,
        "digest_time": f"{daily.at:%H:%M}",
        "timezone": daily.timezone,
        "quiet": True,
        "last_digest_at": now,
        "next_digest_at": daily.next_slot(now),
    }
    channel, created = ctx.store.ensure_channel(
        key, now, max_papers=ctx.settings.digest.max_papers, **settings
    )
    values: dict[str, object] = settings if restart and not created else {}
    resumed = bool(channel.paused_reason)
    if resumed:
        values = {**values, "paused_reason": None}
    if values:
        ctx.store.update_channel(key, **values)
    return resumed


def _next_at(channel: Channel, daily: Schedule, now: datetime) -> datetime:
    """When the message comes after the user moved its time to `daily`. A message already
    due (its slot passed, the tick has not run) still goes at the next tick; otherwise the
    first new slot at least `MIN_GAP` after the previous message (or the first watch), so
    moving the time never sends twice in a day."""
    due = aware(channel.next_digest_at)
    if due is not None and due <= now:
        return due
    last = aware(channel.last_digest_at) or now
    nxt = daily.next_slot(max(now, last + MIN_GAP))
    assert nxt is not None  # daily
    return nxt


async def do_watches(ctx: Context, text: str) -> Reply:
    if text.strip() and text.strip().lower() != "list":
        return _set_time(ctx, text)
    key = ctx.inv.direct.key
    subs = ctx.store.subscriptions(key)
    channel = ctx.store.channel(key)
    if not subs:
        return info(
            "You watch nothing yet.",
            "`/papers watch author:rafailov` (any search) sends you a direct message once a "
            "day with the new papers matching it. Only you see your watches.",
        )
    paused = channel is not None and bool(channel.paused_reason)
    lines = _watch_lines(ctx, subs, paused)
    if paused:
        assert channel is not None
        _ready(ctx, restart=False)
        lines.append(
            f"The last direct message could not be delivered: {channel.paused_reason}. "
            "Check that this app may message you; I will try again from the next one."
        )
    lines.append(_next_line(ctx, channel))
    lines.append(HOW_TO)
    return info("Your watches (only you can see them)", "\n".join(lines))


def _set_time(ctx: Context, text: str) -> Reply:
    """`watches at 18:30 America/New_York`: when the user's daily message comes (the zone
    they had, UTC at first, when they give none)."""
    words = text.split()
    if words and words[0].lower() == "at":
        words = words[1:]
    if not words or ":" not in words[0]:
        return error("At what time should your direct message come?", f"Try {AT_EXAMPLE}.")
    if len(words) > 2:
        return error(f"Unexpected `{' '.join(words[2:])[:40]}`.", f"Try {AT_EXAMPLE}.")
    key = ctx.inv.direct.key
    try:
        at = parse_time(words[0])
        zone = (
            parse_zone(words[1]) if len(words) > 1 else _schedule(ctx.store.channel(key)).timezone
        )
    except ScheduleError as exc:
        return error("That is not a time I understand.", f"{exc} Try {AT_EXAMPLE}.")
    resumed = _ready(ctx, restart=False)
    channel = ctx.store.channel(key)
    assert channel is not None  # made by _ready
    daily = Schedule(SCHEDULE.kind, at, zone)
    nxt = _next_at(channel, daily, ctx.now)
    ctx.store.update_channel(key, digest_time=f"{at:%H:%M}", timezone=zone, next_digest_at=nxt)
    lines = []
    if resumed:
        lines.append("Your watches were paused (I could not message you); I will try again.")
    if ctx.store.subscriptions(key):
        lines.append(f"Next one: {local_label(nxt, zone)}, if anything new matches.")
    else:
        lines.append("You watch nothing yet: `/papers watch <search>` starts.")
    return info(f"Your direct message now comes daily after {at:%H:%M} {zone}.", "\n".join(lines))


def _watch_lines(ctx: Context, subs: list[Subscription], paused: bool) -> list[str]:
    """Each watch, numbered, with its papers a week over the last four weeks."""
    out = topic_lines(subs).splitlines()
    for n, sub in enumerate(subs):
        if not digests.is_hf_top(sub.query):
            try:
                preview = topic_preview.preview(ctx.store, sub.query, ctx.now, examples=0)
                out[n] += f" · {preview.volume()}"
            except QueryError:
                pass  # saved before a grammar change: listed, not measured
        if paused:
            out[n] += f" · {PAUSED}"
    return out


def _next_line(ctx: Context, channel: Channel | None) -> str:
    nxt = aware(channel.next_digest_at) if channel is not None else None
    if nxt is None or nxt <= ctx.now:
        return "Next direct message: at the next check, if anything new matches."
    zone = _schedule(channel).timezone
    return f"Next direct message: {local_label(nxt, zone)}, if anything new matches."


async def do_unwatch(ctx: Context, text: str) -> Reply:
    key = ctx.inv.direct.key
    subs = ctx.store.subscriptions(key)
    target = " ".join(text.split())
    if not target:
        return error("Stop watching what?", "Give the watch or its number from `/papers watches`.")
    chosen = chosen_topic(subs, target, _watched_form)
    if chosen is None or chosen.id is None:
        listing = topic_lines(subs) or "You watch nothing."
        return error(f"You do not watch {target[:80]}.", listing)
    ctx.store.unsubscribe(key, chosen.id)
    left = len(subs) - 1
    return info(
        f"Stopped watching {digests.topic_label(chosen.query)}.",
        f"{left} watch{'es' if left != 1 else ''} left."
        if left
        else "No watches left: no more direct messages.",
    )


def _watched_form(target: str) -> str:
    """A watch as typed, normalized as it was stored (any spelling of the HF top: its one)."""
    return normalize_topic(digests.HF_TOP if digests.is_hf_top(target) else target)


def first_watched(store: PaperStore, keys: Sequence[str]) -> dict[str, datetime]:
    """User DM key -> when their oldest current watch was made: their messages never hold a
    paper announced before it (the first one covers papers since then, no backlog)."""
    table = Subscription.__table__  # type: ignore[attr-defined]
    out: dict[str, datetime] = {}
    for chunk in chunks(list(keys), 5_000):
        stmt = (
            select(table.c.channel_key, func.min(table.c.created_at))
            .where(table.c.channel_key.in_(chunk))
            .group_by(table.c.channel_key)
        )
        with Session(store.engine) as session:
            for key, first in session.execute(stmt):
                if first is not None:
                    out[key] = aware(first)
    return out


def floored(store: PaperStore, plan: digests.Plan) -> digests.Plan:
    """One channel's plan; for a user's DM with the floor of `first_watched` (no backlog)."""
    if not is_direct_key(plan.channel_key):
        return plan
    return replace(plan, floor=first_watched(store, [plan.channel_key]).get(plan.channel_key))
