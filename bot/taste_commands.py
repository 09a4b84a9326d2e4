"""`/papers taste [reset]`: what a channel's 👍/👎 reactions taught its digest, and forgetting it
(the rules: `bot.taste`; the rows: `bot.taste_store`)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.command_context import Context
from bot.messages import Reply, error, info, shorten
from bot.paper_terms import readable
from bot.taste import Scorer, Vectors, terms
from bot.taste_rarity import rarity
from bot.taste_store import MAX_PAPERS, Learned, forget, learned

TASTE_USAGE = "`/papers taste` or `/papers taste reset`"
HOW = (
    "React 👍 or 👎 on a digest post: this channel's next digests rank papers like the 👍 ones "
    "higher and papers like the 👎 ones lower, and say why on the card."
)
SHOWN = 5  # papers listed per side
WORDS = 8


async def do_taste(ctx: Context, text: str) -> Reply:
    words = text.lower().split()
    if not words:
        return _show(ctx)
    if words != ["reset"]:
        return error(f"`taste {text[:60]}` is not something I can do.", f"Try {TASTE_USAGE}.")
    if not ctx.inv.can_manage:
        return error(
            "Only people who can manage this channel may reset what it learned.",
            "`/papers taste` shows it to anyone.",
        )
    n = forget(ctx.store.engine, ctx.inv.channel.key)
    if not n:
        return info("Nothing to forget: nobody has reacted 👍 or 👎 here yet.", HOW)
    return info(
        f"Forgot {n} reaction{'s' if n != 1 else ''} in this channel.",
        "Its digests are ranked as if nobody had reacted; new 👍/👎 teach it again.",
        ephemeral=False,
    )


def _show(ctx: Context) -> Reply:
    seen = learned(ctx.store.engine, ctx.inv.channel.key)
    if not seen.taste:
        return info("Nothing learned yet in this channel.", HOW)
    people = f"{seen.people} {'person' if seen.people == 1 else 'people'}"
    lines = [f"{seen.ups} 👍 and {seen.downs} 👎 from {people} on this channel's posts."]
    lines += _side(ctx, "Ranked higher: papers like", seen.taste.liked)
    lines += _side(ctx, "Ranked lower: papers like", seen.taste.disliked)
    words = _words(ctx, seen)
    if words:
        lines.append("Words it learned: " + ", ".join(words) + ".")
    lines.append("`/papers taste reset` forgets it (channel managers).")
    return info("What this channel's reactions taught its digest", "\n".join(lines))


def _side(ctx: Context, heading: str, weights: Mapping[str, float]) -> list[str]:
    if not weights:
        return []
    best = sorted(weights, key=lambda pid: (-weights[pid], pid))[:SHOWN]
    titles = {p.id: p.title for p in ctx.store.get_many(best)}
    lines = [heading]
    for pid in best:
        title = shorten(titles.get(pid, pid), 100)
        lines.append(f"• {title} ({_weight(weights[pid])})")
    if len(weights) > SHOWN:
        lines.append(f"  and {len(weights) - SHOWN} more")
    return lines


def _weight(value: float) -> str:
    """A paper's share of reactions: "1 reaction", "0.2 of a reaction" (a digest's share)."""
    if value >= 0.995:
        n = round(value, 1)
        return f"{n:g} reaction{'s' if n != 1 else ''}"
    return f"{value:.1f} of a reaction (shared by a digest's papers)"


def _words(ctx: Context, seen: Learned) -> list[str]:
    """The words that weigh most in the 👍 profile (rare in the store, common in 👍 papers),
    as the papers write them (the profile holds the index's analysed terms)."""
    taste = seen.taste.trimmed(MAX_PAPERS)  # as digests read it
    vectors = Vectors(rarity(ctx.store))
    papers = ctx.store.get_many(sorted(taste.paper_ids))
    vectors.bags.update((p.id, terms(p)) for p in papers)
    profile = Scorer(taste, vectors).liked[0]
    top = sorted(profile, key=lambda w: (-profile[w], w))[:WORDS]
    texts = [" ".join([p.title, *(p.ai_keywords or ()), p.abstract or ""]) for p in papers]
    return list(dict.fromkeys(readable(top, texts)))  # two terms may read as one word
