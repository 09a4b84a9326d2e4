"""A channel's noise budget, set from chat: `/papers digest max N` (papers a digest shows),
`/papers digest min-upvotes N` (Hugging Face upvotes a paper needs) and `/papers digest quiet
on|off` (whether a day with nothing that passes the budget posts a line or nothing)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.command_context import Context, ensure_channel
from bot.messages import Reply, error, info
from bot.models import Channel

MAX_PAPERS = 30  # a digest longer than this is not read; the rest is the "+N more" line
MAX_MIN_UPVOTES = 1000  # more than the most upvoted Hugging Face paper of a year gets
BUDGET_WORDS = ("max", "min-upvotes", "quiet")
BUDGET_USAGE = "`/papers digest max 5`, `/papers digest min-upvotes 3`, `/papers digest quiet on`"
_NUMBER = re.compile(r"[0-9]{1,7}")


@dataclass(frozen=True)
class Limit:
    """One numeric budget setting: its column on `Channel` and its allowed range."""

    column: str
    low: int
    high: int
    example: str


LIMITS = {
    "max": Limit("max_papers", 1, MAX_PAPERS, "/papers digest max 5"),
    "min-upvotes": Limit("min_upvotes", 0, MAX_MIN_UPVOTES, "/papers digest min-upvotes 3"),
}


def is_budget(words: list[str]) -> bool:
    return bool(words) and words[0] in BUDGET_WORDS


def budget_line(channel: Channel) -> str:
    """The budget as `/papers list` shows it."""
    n = channel.max_papers
    upvotes = (
        f"only papers with {channel.min_upvotes}+ Hugging Face upvotes"
        if channel.min_upvotes
        else "any number of upvotes"
    )
    quiet = (
        "Quiet on: a day with nothing that passes posts nothing"
        if channel.quiet
        else "Quiet off: a day with nothing that passes posts one line saying so"
    )
    return (
        f'Budget: at most {n} paper{"s" if n != 1 else ""} a digest (the rest as "+N more"), '
        f"{upvotes}. {quiet}. Change it with `/papers digest max N`, `min-upvotes N`, "
        "`quiet on|off`."
    )


def budget_brief(channel: Channel) -> str:
    """The budget in a few words, for the preview's footer."""
    bits = [f"at most {channel.max_papers}"]
    if channel.min_upvotes:
        bits.append(f"{channel.min_upvotes}+ upvotes")
    if channel.quiet:
        bits.append("quiet")
    return f"Budget: {', '.join(bits)}."


def set_budget(ctx: Context, words: list[str]) -> Reply:
    """`max N`, `min-upvotes N` or `quiet on|off` (the words after `digest`)."""
    if not ctx.inv.can_manage:
        return error(
            "Only people who can manage this channel may change its digest budget.",
            "`/papers list` shows the budget to anyone.",
        )
    if words[0] == "quiet":
        return _set_quiet(ctx, words[1:])
    limit = LIMITS[words[0]]
    value = words[1] if len(words) == 2 else " ".join(words[1:])
    if not _NUMBER.fullmatch(value) or not limit.low <= int(value) <= limit.high:
        shown = f" `{value[:20]}`" if value else ""
        return error(
            f"`digest {words[0]}` takes a whole number from {limit.low} to {limit.high}"
            f"{';' + shown + ' is not one' if shown else ''}.",
            f"For example `{limit.example}`.",
        )
    ensure_channel(ctx)
    ctx.store.update_channel(ctx.inv.channel.key, **{limit.column: int(value)})
    channel = ctx.store.channel(ctx.inv.channel.key)
    assert channel is not None
    return info("Digest budget changed.", budget_line(channel), ephemeral=False)


def _set_quiet(ctx: Context, rest: list[str]) -> Reply:
    if rest not in (["on"], ["off"]):
        said = " ".join(rest)[:20]
        return error(
            f"`digest quiet` takes on or off{'; `' + said + '` is neither' if said else ''}.",
            "For example `/papers digest quiet on`.",
        )
    ensure_channel(ctx)
    quiet = rest == ["on"]
    ctx.store.update_channel(ctx.inv.channel.key, quiet=quiet)
    if quiet:
        return info(
            "Quiet mode on.",
            "A digest with no paper that passes the budget is not posted.",
            ephemeral=False,
        )
    return info(
        "Quiet mode off.",
        "A digest with no paper that passes the budget says so in one line, with the state of "
        "the sources.",
        ephemeral=False,
    )
