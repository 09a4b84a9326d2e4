"""`/papers catchup [7d|2w]`: the best papers on this channel's topics over a period, shown
only to the person who asked (back from a break), without touching the channel's ledger.

It selects like a digest (`bot.digest_select`: the relevance floor, the channel's cap and
upvote floor) over the papers announced in the period, ignoring what the channel was already
sent, and records nothing: no run, no claim, no delivery.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot import digest as digests
from bot.cards import to_card
from bot.command_context import Context
from bot.messages import Reply, ReplyKind, error, info
from bot.times import local_label

DEFAULT_PERIOD = "7d"
MAX_DAYS = 30
_PERIOD = re.compile(r"([0-9]{1,3})\s*([dw])")
PERIOD_HINT = (
    f"Try `/papers catchup 7d` or `/papers catchup 2w` (days or weeks, up to {MAX_DAYS}d)."
)


def parse_period(text: str) -> timedelta | None:
    """`7d`, `2w`, `10 d` -> the period; None when it is not one (or beyond MAX_DAYS)."""
    found = _PERIOD.fullmatch(text.strip().lower() or DEFAULT_PERIOD)
    if found is None:
        return None
    days = int(found.group(1)) * (7 if found.group(2) == "w" else 1)
    return timedelta(days=days) if 1 <= days <= MAX_DAYS else None


async def do_catchup(ctx: Context, text: str) -> Reply:
    period = parse_period(text)
    if period is None:
        return error(f"`{text.strip()[:40]}` is not a period I can catch up on.", PERIOD_HINT)
    key = ctx.inv.channel.key
    topics = [s.query for s in ctx.store.subscriptions(key)]
    if not topics:
        return info(
            "This channel follows no topics, so there is nothing to catch up on.",
            "Add one with `/papers subscribe dpo` (or `/papers subscribe --hf-top`).",
        )
    channel = ctx.store.channel(key)
    since = ctx.now - period
    plan = digests.Plan(
        key,
        tuple(topics),
        since,
        max_papers=channel.max_papers if channel else ctx.settings.digest.max_papers,
        min_upvotes=channel.min_upvotes if channel else 0,
    )
    picked = digests.select_one(ctx.store, plan, ctx.now)  # no ledger: everything counts
    zone = channel.timezone if channel and channel.timezone else "UTC"
    span = _span(period.days)
    what = ", ".join(digests.topic_label(t) for t in topics)
    if not picked.picks:
        return info(f"Nothing on {what} in {span} (since {local_label(since, zone)}).")
    n = len(picked.picks) + picked.more
    return Reply(
        kind=ReplyKind.DIGEST,
        title=f"Catch-up: {n} paper{'s' if n != 1 else ''} on this channel's topics in {span}",
        cards=tuple(to_card(p.paper, p.relevance, p.topics, p.reason) for p in picked.picks),
        more=picked.more,
        footer="Only you see this, and nothing was marked as sent: the channel's digests are "
        "unchanged.",
        ephemeral=True,
    )


def _span(days: int) -> str:
    """7 -> "the last week", 14 -> "the last 2 weeks", 10 -> "the last 10 days"."""
    if days % 7:
        return f"the last {days} day{'s' if days != 1 else ''}"
    weeks = days // 7
    return "the last week" if weeks == 1 else f"the last {weeks} weeks"
