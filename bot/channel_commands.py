"""Handlers for what a channel follows and gets: topics, the digest schedule, digests, and the
bot's status as seen from the channel."""

from __future__ import annotations

from dataclasses import replace

from bot import digest as digests, topic_preview
from bot.aliases import normalize_topic
from bot.command_context import (
    EMPTY_STORE,
    Context,
    chosen_topic,
    ensure_channel,
    plain_source_error,
    save_schedule,
    schedule_of,
    standing_query_error,
    topic_lines,
)
from bot.delivery import post_now
from bot.digest_budget import BUDGET_USAGE, budget_brief, budget_line, is_budget, set_budget
from bot.errors import QueryError
from bot.followup_ledger import FollowUpLedger
from bot.messages import Reply, error, info
from bot.models import Subscription
from bot.schedules import EXAMPLE as SCHEDULE_EXAMPLE, Schedule, ScheduleError, parse_schedule
from bot.times import local_label
from bot.watches import floored


async def do_subscribe(ctx: Context, text: str) -> Reply:
    if not text.strip():
        return error("Subscribe to what?", "Give a topic, for example `/papers subscribe dpo`.")
    problem = standing_query_error(text, ctx.now, "topic", "/papers subscribe")
    if problem is not None:
        return problem
    if digests.is_hf_top(text):
        text = digests.HF_TOP
    key = ctx.inv.channel.key
    channel, created_channel = ensure_channel(ctx)
    sub, created = ctx.store.subscribe(key, text, ctx.now, user=ctx.inv.user.user_id)
    if not created:
        return info(f"This channel already follows {sub.query}.", "See `/papers list`.")
    lines = ["New papers on this topic will appear in this channel's digest."]
    if channel.schedule == "off" and created_channel:
        digest = ctx.settings.digest
        schedule = Schedule.from_stored(digest.schedule, digest.time, digest.timezone)
        save_schedule(ctx, schedule)
        lines.append(
            f"Digests come {schedule.describe()}; change that with "
            "`/papers schedule daily 09:00 Europe/Berlin` (or weekdays, weekly mon, off)."
        )
    elif channel.schedule == "off":
        lines.append("Digests are off here: turn them on with `/papers schedule daily 09:00`.")
    if sub.query != digests.HF_TOP:
        lines += topic_preview.preview(ctx.store, sub.query, ctx.now).lines()
    shown = (
        "the top of each day's Hugging Face Daily Papers"
        if sub.query == digests.HF_TOP
        else sub.query
    )
    return info(f"Subscribed this channel to {shown}.", "\n".join(lines), ephemeral=False)


async def do_unsubscribe(ctx: Context, text: str) -> Reply:
    key = ctx.inv.channel.key
    subs = ctx.store.subscriptions(key)
    target = text.strip()
    if not target:
        return error("Unsubscribe from what?", "Give the topic or its number from `/papers list`.")
    chosen = chosen_topic(subs, target, normalize_topic)
    if chosen is None or chosen.id is None:
        listing = topic_lines(subs) or "This channel follows no topics."
        return error(f"This channel does not follow {target}.", listing)
    ctx.store.unsubscribe(key, chosen.id)
    left = len(subs) - 1
    return info(
        f"Unsubscribed this channel from {chosen.query}.",
        f"{left} topic{'s' if left != 1 else ''} left." if left else "No topics left.",
        ephemeral=False,
    )


async def do_list(ctx: Context, _text: str) -> Reply:
    subs = ctx.store.subscriptions(ctx.inv.channel.key)
    channel = ctx.store.channel(ctx.inv.channel.key)
    schedule = schedule_of(ctx, channel)
    lines = [_volume_lines(ctx, subs) or "No topics yet: `/papers subscribe dpo` adds one."]
    lines.append(f"Digest: {schedule.describe()}.")
    nxt = schedule.next_slot(ctx.now) if subs else None
    if nxt is not None:
        lines.append(f"Next digest: {local_label(nxt, schedule.timezone)}.")
    if channel is not None:
        lines.append(budget_line(channel))
    if channel is not None and channel.paused_reason:
        lines.append(
            f"Digests are paused: {channel.paused_reason}. Setting a schedule resumes them."
        )
    lines.append(followups_line(channel is None or channel.followups))
    unknown = ctx.ledger.unknown_summary(ctx.inv.channel.key)
    if unknown.papers:
        lines.append(unknown.line(here=True))
    return info("This channel's topics", "\n".join(lines))


def _volume_lines(ctx: Context, subs: list[Subscription]) -> str:
    """`topic_lines`, each search topic with its weekly volume over the last four weeks."""
    out = topic_lines(subs).splitlines()
    for n, sub in enumerate(subs):
        if digests.is_hf_top(sub.query):
            continue
        try:
            volume = topic_preview.preview(ctx.store, sub.query, ctx.now, examples=0).volume()
        except QueryError:
            continue  # stored before a rule changed: listed, not measured
        out[n] += f" · {volume}"
    return "\n".join(out)


async def do_schedule(ctx: Context, text: str) -> Reply:
    channel, _ = ensure_channel(ctx)
    current = schedule_of(ctx, channel)
    if not text.strip():
        return info(f"Digests here: {current.describe()}.", f"Change it with {SCHEDULE_EXAMPLE}.")
    try:
        schedule = parse_schedule(text, current)
    except ScheduleError as exc:
        return error("That is not a schedule I understand.", str(exc))
    save_schedule(ctx, schedule)
    if schedule.kind == "off":
        return info(
            "Digests are off for this channel.",
            "Turn them on with `/papers schedule daily 09:00`.",
            ephemeral=False,
        )
    nxt = schedule.next_slot(ctx.now)
    assert nxt is not None
    return info(
        f"Digests come {schedule.describe()}.",
        f"Next digest: {local_label(nxt, schedule.timezone)}.",
        ephemeral=False,
    )


DIGEST_USAGE = (
    "`/papers digest` (preview), `/papers digest post`, "
    "`/papers digest resend` (posts whose outcome is unknown), or the budget: " + BUDGET_USAGE
)


async def do_digest(ctx: Context, text: str) -> Reply:
    words = text.lower().split()
    if not words:
        return _digest_preview(ctx)
    if is_budget(words):
        return set_budget(ctx, words)
    if words not in (["post"], ["resend"]):
        return error(f"`digest {text[:60]}` is not something I can do.", f"Try {DIGEST_USAGE}.")
    if not ctx.inv.can_manage:
        return error(
            "Only people who can manage this channel may post or resend digests.",
            "`/papers digest` shows a preview to anyone.",
        )
    if words[0] == "resend":
        ledger = ctx.ledger
        n = ledger.requeue_unknown(ctx.inv.channel.key, ctx.now)
        if not n:
            return info("No post here has an unknown outcome.", "Nothing to resend.")
        return info(
            f"{n} paper{'s' if n != 1 else ''} whose post had an unknown outcome will be "
            "posted again with the next digest tick.",
            "Only do this if the digest is missing from the channel.",
        )
    return await _digest_post(ctx)


def _digest_preview(ctx: Context) -> Reply:
    key = ctx.inv.channel.key
    subs = ctx.store.subscriptions(key)
    channel = ctx.store.channel(key)
    if not subs or channel is None:
        return info(
            "This channel follows no topics yet.",
            "Add one with `/papers subscribe dpo` (or `--hf-top`), then `/papers digest` "
            "previews its digest.",
        )
    ledger = ctx.ledger
    slot = digests.due_slot(channel, ctx.now) or ctx.now
    plan = floored(ctx.store, digests.plan_for(channel, [s.query for s in subs], slot))
    delivered = ledger.delivered([key]).get(key, set())
    selection = digests.select_one(ctx.store, plan, ctx.now, delivered)
    reply = digests.digest_reply(
        channel,
        selection,
        ctx.now,
        ctx.store.source_states(),
        topics=plan.topics,
        preview=True,
    )
    assert reply is not None  # previews are never quiet
    schedule = schedule_of(ctx, channel)
    nxt = schedule.next_slot(ctx.now)
    when = f"Next digest: {local_label(nxt, schedule.timezone)}." if nxt else "Digests are off."
    parts = (reply.footer, budget_brief(channel), when)
    return replace(reply, footer=" ".join(b for b in parts if b))


async def _digest_post(ctx: Context) -> Reply:
    if ctx.outbox is None:
        return error(
            "I can only post digests while the bot is running.",
            "`/papers digest` shows a preview; `paperboy digest --channel KEY` posts one.",
        )
    ledger = ctx.ledger
    report = await post_now(ctx.store, ledger, ctx.outbox, ctx.inv.channel.key, ctx.now)
    if report is None:
        return info("Nothing to post.", "This channel follows no topics: `/papers subscribe dpo`.")
    if report.messages:
        n = report.papers_sent
        return info(f"Posted this channel's digest ({n} paper{'s' if n != 1 else ''}).")
    return error(
        "Posting the digest did not work.",
        "It is recorded and retried when the platform allows; see `/papers status`.",
    )


async def do_status(ctx: Context, _text: str) -> Reply:
    lines = [f"{ctx.store.count():,} papers in the store."]
    for state in sorted(ctx.store.source_states(), key=lambda s: s.source):
        bits = [state.source]
        if state.newest_paper_at:
            bits.append(f"newest {state.newest_paper_at:%Y-%m-%d}")
        if state.last_success_at:
            bits.append(f"last fetched {state.last_success_at:%Y-%m-%d %H:%M} UTC")
        if state.consecutive_failures:
            since = (
                f" since {state.last_error_at:%Y-%m-%d %H:%M} UTC" if state.last_error_at else ""
            )
            bits.append(
                f"FAILING{since} ({state.consecutive_failures}x): "
                f"{plain_source_error(state.source, state.last_error)}"
            )
        if state.items_skipped:
            n = state.items_skipped
            bits.append(
                f"{n} item{'s' if n != 1 else ''} skipped in the last fetch (bad data; "
                f"the rest was stored): {state.skipped_note or 'see the log'}"
            )
        lines.append(" · ".join(bits))
    if not ctx.store.count():
        lines.append(EMPTY_STORE)
    lines.append(f"This channel: {ctx.inv.channel.key}")
    channel = ctx.store.channel(ctx.inv.channel.key)
    if channel is not None and channel.paused_reason:
        lines.append(f"Digests in this channel are paused: {channel.paused_reason}")
    ledger = ctx.ledger
    # Only this workspace's (or Discord server's) channels: another team's are not ours to see.
    here_ref = ctx.inv.channel
    workspace = f"{here_ref.platform}:{here_ref.workspace}:"
    unknown = ledger.unknown_summary(prefix=workspace)
    if unknown.papers:
        here = ledger.unknown_summary(ctx.inv.channel.key)
        lines.append(unknown.line())
        if here.papers:
            lines.append(f"In this channel: {here.line(here=True)}")
    replies = FollowUpLedger(ctx.store.engine).unknown_in(workspace, ctx.now)
    if replies:
        lines.append(unknown_replies_line(replies, here_ref.key))
    return info("paperboy status", "\n".join(lines))


def unknown_replies_line(replies: dict[str, int], here: str) -> str:
    """Follow-up replies the platform did not confirm: they are checked in the thread
    (never posted twice), and `/papers status` says so until they are settled."""
    total = sum(replies.values())
    what = "1 follow-up reply has" if total == 1 else f"{total} follow-up replies have"
    where = "1 channel" if len(replies) == 1 else f"{len(replies)} channels"
    line = (
        f"{what} an unknown outcome in {where} (the platform did not answer); each is being "
        "checked in its thread, never re-sent blindly."
    )
    if replies.get(here):
        line += f" {replies[here]} in this channel."
    return line


FOLLOWUPS_ON = (
    "Follow-ups: on. When a paper posted here in the last 30 days gets code, a new arXiv "
    "version, a venue, or passes 50/100/200/500 Hugging Face upvotes or 100/1,000 GitHub "
    "stars, one reply goes into that post's thread. `/papers followups off` stops them."
)
FOLLOWUPS_OFF = "Follow-ups: off. `/papers followups on` replies in a post's thread with news."


def followups_line(on: bool) -> str:
    """The follow-up setting as `/papers list` shows it."""
    return FOLLOWUPS_ON if on else FOLLOWUPS_OFF


async def do_followups(ctx: Context, text: str) -> Reply:
    """`followups on|off`: replies in a post's thread when its paper has news (bot.followups)."""
    word = text.strip().lower()
    if not word:
        channel = ctx.store.channel(ctx.inv.channel.key)
        return info(followups_line(channel is None or channel.followups))
    if word not in ("on", "off"):
        return error(
            f"`followups {text[:40]}` is not a setting I know.",
            "Use `/papers followups on` or `/papers followups off`.",
        )
    if not ctx.inv.can_manage:
        return error(
            "Only people who can manage this channel may turn follow-ups on or off.",
            "`/papers followups` shows the setting to anyone.",
        )
    ensure_channel(ctx)
    ctx.store.update_channel(ctx.inv.channel.key, followups=word == "on")
    if word == "on":
        return info(
            "Follow-ups are on for this channel.",
            "News about a paper posted here (code, a new version, a venue, upvotes, stars) "
            "comes as a reply in that post's thread.",
            ephemeral=False,
        )
    return info(
        "Follow-ups are off for this channel.",
        "No more replies in the threads of posts here; `/papers followups on` turns them on.",
        ephemeral=False,
    )
