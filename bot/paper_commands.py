"""Handlers that show papers: search, one paper in detail, the top of Hugging Face."""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from bot import search
from bot.cards import to_card
from bot.command_context import EMPTY_STORE, Context, Later, lookup_failed
from bot.errors import QueryError, SourceError
from bot.ids import parse_arxiv_id
from bot.messages import Reply, ReplyKind, error, info
from bot.models import Paper

logger = logging.getLogger(__name__)

# A chat answer waits at most this long for a remote source; then the answer comes from the
# store and says the remote source did not answer.
REMOTE_BUDGET = 2.0
TOP_PERIODS = {"day": 1, "week": 7, "month": 30}


async def do_search(ctx: Context, text: str) -> Reply | Later:
    query = _search_query(text, ctx.now)
    if isinstance(query, Reply):
        return query
    limit = ctx.settings.search.results
    hits = search.search_papers(ctx.store, query, limit + 1, ctx.now)
    full_matches = sum(1 for hit in hits if not hit.partial)
    if ctx.remote is not None and full_matches < limit and query.plain_text():

        async def topped_up() -> Reply:
            more, note = await _with_remote_hits(ctx, query, hits, limit + 1)
            return _results(ctx, text, query, more, note)

        return Later(topped_up)
    return _results(ctx, text, query, hits, "")


def _search_query(text: str, now: datetime) -> search.Query | Reply:
    """The parsed search, or the error to show instead."""
    if not text.strip():
        return error("What should I search for?", "Type some words, for example `/papers dpo`.")
    try:
        query = search.parse_query(text, now)
    except QueryError as exc:
        return error("I could not read that search.", str(exc))
    if query.is_empty():
        return error(
            "That search has no words I can look for.",
            'Try words or a phrase, for example `/papers dpo` or `/papers "reward model"`.',
        )
    return query


def _results(
    ctx: Context, text: str, query: search.Query, hits: list[search.Hit], remote_note: str
) -> Reply:
    limit = ctx.settings.search.results
    shown = hits[:limit]
    meant = _meant_command(text, ctx.command_names)
    if not shown:
        return _no_results(ctx, text, query, meant, remote_note)
    # Counting every match of a common word costs more than the search itself (it cannot be
    # pruned), so a search only says whether there is more, not how much.
    more = len(hits) > limit and not hits[limit].partial
    narrow = " · more match: add words or filters to narrow" if more else ""
    some = sum(1 for hit in shown if hit.partial)
    if some == len(shown):
        narrow = " · no paper matches all your words; these match some of them"
    elif some:
        narrow = f" · also papers matching some of your words (the last {some})"
    topic = _subscribable(text)
    follow = f" · `/papers subscribe {topic}` for new ones in this channel's digest"
    follow = follow if topic else ""
    return Reply(
        kind=ReplyKind.RESULTS,
        title=f"Papers for {text}",
        text="\n".join(line for line in (meant, remote_note) if line),
        cards=tuple(to_card(hit.paper, hit.score) for hit in shown),
        footer=f"{search.describe(query)}{narrow}{follow}",
        ephemeral=True,
        query=text,
    )


def _no_results(
    ctx: Context, text: str, query: search.Query, meant: str, remote_note: str
) -> Reply:
    empty = not remote_note and ctx.store.count() == 0
    hint = "" if empty else "Try fewer or broader words, or drop a filter."
    if hint and query.truncated:
        # A cut query says so: the words past the limit were not searched.
        hint += f" Searched: {search.describe(query)}."
    return Reply(
        kind=ReplyKind.RESULTS,
        title=EMPTY_STORE if empty else f"No papers match {text}.",
        text="\n".join(line for line in (meant, remote_note, hint) if line),
        ephemeral=True,
        query=text,
    )


def _meant_command(text: str, names: Collection[str]) -> str:
    """`/papers lsit` is a search for "lsit", but the user most likely meant `list`."""
    word = text.strip().lower()
    if " " in word or word in names:
        return ""
    candidates = [name for name in names if len(name) > 2]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
    if not close:
        return ""
    return f"Did you mean `/papers {close[0]}`? (This searched for {text.strip()}.)"


def _subscribable(text: str) -> str:
    """The search as a topic to suggest, or "" when the text is not one a user should copy
    (a dangling OR, an unclosed quote or parenthesis)."""
    tokens = text.split()
    while tokens and tokens[0].upper() == "OR":
        tokens.pop(0)
    while tokens and tokens[-1].upper() == "OR":
        tokens.pop()
    cleaned = " ".join(tokens)
    if cleaned != " ".join(text.split()):
        return ""
    if cleaned.count('"') % 2 or cleaned.count("(") != cleaned.count(")"):
        return ""
    return cleaned


async def _with_remote_hits(
    ctx: Context, query: search.Query, hits: list[search.Hit], limit: int
) -> tuple[list[search.Hit], str]:
    """Local hits topped up from the remote search, and a note when it did not answer."""
    assert ctx.remote is not None
    try:
        found = await asyncio.wait_for(
            ctx.remote.search_remote(query.plain_text(), limit), REMOTE_BUDGET
        )
    except (SourceError, TimeoutError) as exc:
        logger.warning("remote search failed: %s", exc or "no answer in time")
        return hits, "Hugging Face search did not answer, so these are from my store only."
    if found:
        ctx.store.upsert_many(found, ctx.now)
        hits = search.search_papers(ctx.store, query, limit, ctx.now)
    return hits, ""


async def do_paper(ctx: Context, text: str) -> Reply | Later:
    parsed = parse_arxiv_id(text)
    if parsed is None:
        return error(
            f"`{text}` is not an arXiv id or paper link.",
            "Try `/papers 2305.18290` or `/papers https://arxiv.org/abs/2305.18290`.",
        )
    paper = ctx.store.get(parsed.key)
    if paper is None and ctx.remote is not None:
        return Later(lambda: _fetch_paper(ctx, parsed.key))
    return _paper_reply(paper, parsed.key)


async def _fetch_paper(ctx: Context, key: str) -> Reply:
    """A paper not in the store, from the remote sources (and stored for next time)."""
    assert ctx.remote is not None
    try:
        fetched = await asyncio.wait_for(ctx.remote.lookup_paper(key), REMOTE_BUDGET)
    except (SourceError, TimeoutError) as exc:
        logger.warning("lookup of %s failed: %s", key, exc or "no answer in time")
        why = lookup_failed(exc)
        return error(
            f"{key} is not in my store, and looking it up failed.",
            f"{why}. Try again in a minute. On arXiv: https://arxiv.org/abs/{key}",
        )
    if fetched is not None:
        ctx.store.upsert_many([fetched], ctx.now)
    return _paper_reply(ctx.store.get(key), key)


def _paper_reply(paper: Paper | None, key: str) -> Reply:
    if paper is None:
        return error(
            f"I don't know paper {key} yet.",
            f"It is not in my store. On arXiv: https://arxiv.org/abs/{key}",
        )
    return Reply(kind=ReplyKind.PAPER, title=paper.title, cards=(to_card(paper),))


async def do_top(ctx: Context, text: str) -> Reply:
    period = (text.split() or ["day"])[0].lower()
    if period not in TOP_PERIODS or len(text.split()) > 1:
        return error(f"`top {text}` is not a period I know.", "Use `/papers top day|week|month`.")
    limit = ctx.settings.search.results
    since = (ctx.now - timedelta(days=TOP_PERIODS[period])).date()
    until = (ctx.now + timedelta(days=1)).date()  # HF dates lists ahead of UTC in Asia
    # "Top" means upvoted: a paper nobody upvoted is never listed as a top paper.
    papers = [p for p in ctx.store.top(since, limit, until=until) if p.upvotes]
    note = ""
    if not papers and period == "day":
        # No list today yet (weekends, early morning): show the newest list there is.
        newest = ctx.store.newest_daily_date(until)
        if newest is not None:
            papers = [p for p in ctx.store.top(newest, limit, until=until) if p.upvotes]
            note = f"No Daily Papers list yet today; this is the list of {newest:%a %d %b}."
    if not papers and ctx.store.count() == 0:
        return info(EMPTY_STORE)
    if not papers:
        listed = bool(ctx.store.top(since, 1, until=until))
        return info(
            f"No upvoted papers in the last {period}.",
            "Nobody has upvoted the papers of that period on Hugging Face yet; try "
            "`/papers top month`."
            if listed and period != "month"
            else "The store has no Hugging Face Daily Papers for that period yet.",
        )
    return Reply(
        kind=ReplyKind.RESULTS,
        title=f"Top papers of the {period}" if period != "day" else "Top papers today",
        text=note,
        cards=tuple(to_card(p) for p in papers),
        footer="by Hugging Face upvotes",
        ephemeral=True,
    )
