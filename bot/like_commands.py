"""`/papers like <id|url> [more ids] [since:...] [until:...] [sort:relevance|new]`: the papers
of the store nearest to one paper, or to up to ten together (`bot.similar`). The "More like
this" button under every paper card sends `like <its id>`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from bot.cards import to_card
from bot.command_context import Context, Later, lookup_failed
from bot.errors import QueryError, SourceError
from bot.ids import parse_arxiv_id
from bot.messages import Reply, ReplyKind, error, info, shorten
from bot.models import Paper
from bot.paper_commands import REMOTE_BUDGET
from bot.query import Sort, parse_query
from bot.similar import MAX_PAPERS, NEWEST_OF, similar

logger = logging.getLogger(__name__)

FILTERS = ("since:", "until:", "sort:")
USAGE = "Try `/papers like 2305.18290` or `/papers like 2305.18290 2402.01306 since:1y sort:new`."


@dataclass(frozen=True)
class LikeRequest:
    ids: tuple[str, ...]  # store keys, in the order typed, once each
    since: datetime | None
    until: datetime | None
    sort: Sort
    filters: str  # the since:/until:/sort: words as typed, for the footer


async def do_like(ctx: Context, text: str) -> Reply | Later:
    request = parse_like(text, ctx.now)
    if isinstance(request, Reply):
        return request
    papers = {p.id: p for p in ctx.store.get_many(list(request.ids))}
    missing = [key for key in request.ids if key not in papers]
    if missing and ctx.remote is not None:
        return Later(lambda: _after_lookup(ctx, request, missing))
    if missing:
        return _unknown(missing)
    return like_reply(ctx, request, [papers[key] for key in request.ids])


def parse_like(text: str, now: datetime) -> LikeRequest | Reply:
    """The ids and filters of `like ...`, or the one-line answer to a text that is neither."""
    ids: list[str] = []
    filters: list[str] = []
    for word in text.split():
        parsed = parse_arxiv_id(word)
        if parsed is not None:
            if parsed.key not in ids:
                ids.append(parsed.key)
        elif word.lower().startswith(FILTERS):
            filters.append(word)
        else:
            return error(
                f"`{shorten(word, 60)}` is not an arXiv id or paper link.",
                f"{USAGE} To search for words: `/papers search like {shorten(text, 60)}`.",
            )
    if not ids:
        return error("Papers like which paper?", USAGE)
    if len(ids) > MAX_PAPERS:
        return error(f"`like` takes at most {MAX_PAPERS} papers ({len(ids)} given).", USAGE)
    try:
        query = parse_query(" ".join(filters), now)
    except QueryError as exc:
        return error("I could not read that filter.", str(exc))
    if query.sort not in (Sort.RELEVANCE, Sort.NEW):
        return error("`like` sorts by `sort:relevance` (nearest first) or `sort:new`.", USAGE)
    return LikeRequest(tuple(ids), query.since, query.until, query.sort, " ".join(filters))


def like_reply(ctx: Context, request: LikeRequest, papers: list[Paper]) -> Reply:
    limit = ctx.settings.search.results
    hits = similar(
        ctx.store,
        [p.id for p in papers],
        now=ctx.now,
        since=request.since,
        until=request.until,
        sort=request.sort,
        limit=limit,
    )
    title = _title(papers)
    if not hits:
        narrow = " in that period" if request.since or request.until else ""
        return info(f"No paper in my store is close to {_short_names(papers)}{narrow}.")
    found = {p.id: p for p in ctx.store.get_many([h.id for h in hits])}
    cards = tuple(to_card(found[h.id], h.score) for h in hits if h.id in found)
    how = "nearest by title, abstract and keywords"
    if request.sort is Sort.NEW:
        how = f"the {NEWEST_OF} nearest by title, abstract and keywords, newest first"
    footer = " · ".join(bit for bit in (how, request.filters) if bit)
    return Reply(
        kind=ReplyKind.RESULTS,
        title=title,
        text=_inputs(papers) if len(papers) > 1 else "",
        cards=cards,
        footer=footer,
        ephemeral=True,
    )


def _title(papers: list[Paper]) -> str:
    if len(papers) == 1:
        return f"Papers like {shorten(papers[0].title, 120)}"
    return f"Papers like all of these {len(papers)} papers"


def _inputs(papers: list[Paper]) -> str:
    return "\n".join(f"• {shorten(p.title, 150)} ({p.id})" for p in papers)


def _short_names(papers: list[Paper]) -> str:
    if len(papers) == 1:
        return shorten(papers[0].title, 120)
    return f"all of these {len(papers)} papers"


def _unknown(missing: list[str]) -> Reply:
    key = missing[0]
    others = f" (nor {', '.join(missing[1:4])})" if len(missing) > 1 else ""
    return error(
        f"I don't know paper {key} yet{others}.",
        f"It is not in my store. On arXiv: https://arxiv.org/abs/{key}",
    )


async def _after_lookup(ctx: Context, request: LikeRequest, missing: list[str]) -> Reply:
    """Papers not in the store, from the remote sources (stored for next time), then the
    answer; a lookup that fails or finds nothing is said in one line."""
    assert ctx.remote is not None
    remote = ctx.remote
    try:
        fetched = await asyncio.wait_for(
            asyncio.gather(*(remote.lookup_paper(key) for key in missing)), REMOTE_BUDGET
        )
    except (SourceError, TimeoutError) as exc:
        logger.warning("lookup of %s failed: %s", missing, exc or "no answer in time")
        why = lookup_failed(exc)
        return error(f"{missing[0]} is not in my store, and looking it up failed.", f"{why}.")
    found = [paper for paper in fetched if paper is not None]
    if found:
        ctx.store.upsert_many(found, ctx.now)
    papers = {p.id: p for p in ctx.store.get_many(list(request.ids))}
    still = [key for key in request.ids if key not in papers]
    if still:
        return _unknown(still)
    return like_reply(ctx, request, [papers[key] for key in request.ids])
