"""The `/papers` command set: one registry, one text grammar, handlers that return a `Reply`.

Slack sends the text after `/papers`; the console types the same text; Discord builds it from
typed options with `build_text`. `/papers help` and every adapter's registration are generated
from `COMMANDS`, so the platforms cannot drift apart.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot import digest as digests, search
from bot.aliases import normalize_topic
from bot.cards import to_card
from bot.config import Settings
from bot.delivery import post_now
from bot.errors import QueryError, SourceError
from bot.ids import parse_arxiv_id
from bot.ledger import Ledger
from bot.messages import Invocation, Reply, ReplyKind, error, info
from bot.models import Channel, Paper, Subscription
from bot.ports import Outbox, PaperLookup
from bot.schedules import EXAMPLE as SCHEDULE_EXAMPLE, Schedule, ScheduleError, parse_schedule
from bot.store import PaperStore
from bot.times import local_label

logger = logging.getLogger(__name__)

# A chat answer waits at most this long for a remote source; offline, the answer comes from
# the store at once and says the remote source did not answer.
REMOTE_BUDGET = 2.0
EMPTY_STORE = "The store is empty: run `paperboy fetch` (or `paperboy demo` to try it out)."
MAX_INPUT = 2_000  # longer text is cut: Slack allows 4,000 characters after the command
TOP_PERIODS = {"day": 1, "week": 7, "month": 30}
MAX_TOPIC_CHARS = 500  # Subscription.normalized holds 500 (a topic is one search, not a page)


@dataclass
class Context:
    """What a handler may use. `now` is the time of the invocation (UTC)."""

    inv: Invocation
    store: PaperStore
    settings: Settings
    now: datetime
    ledger: Ledger
    remote: PaperLookup | None = None  # remote lookups: only inside a `Later`
    outbox: Outbox | None = None  # where `digest post` posts (None: no running adapters)


@dataclass(frozen=True)
class Later:
    """A handler's answer that needs the network (a paper not in the store, too few local
    hits): the service acks the platform first, then awaits `finish()`."""

    finish: Callable[[], Awaitable[Reply]]


Handler = Callable[[Context, str], Awaitable[Reply | Later]]


@dataclass(frozen=True)
class Option:
    """A typed argument, for platforms with typed options (Discord).

    `rest`: the option takes the remaining text. `autocomplete`: `topics` (this channel's
    subscriptions) or `timezones`.
    """

    name: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    rest: bool = False
    autocomplete: str | None = None


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    usage: str
    examples: tuple[str, ...]
    handler: Handler
    options: tuple[Option, ...] = ()
    manages_channel: bool = False  # changes channel settings: may need a permission
    aliases: tuple[str, ...] = field(default=())


SEARCH = "search"
PAPER = "paper"


def parse_text(text: str) -> tuple[str, str]:
    """`subscribe dpo` -> ("subscribe", "dpo"); `dpo` -> ("search", "dpo").

    A first word that is a command name is that command; an arXiv id or URL is a paper
    lookup; anything else is a search.
    """
    text = " ".join(text.replace("\x00", " ").split())[:MAX_INPUT]
    if not text:
        return "help", ""
    first, _, rest = text.partition(" ")
    name = _BY_NAME.get(first.lower())
    if name is not None and name not in (SEARCH, PAPER):
        return name, rest.strip()
    if parse_arxiv_id(text) is not None:
        return PAPER, text
    if first.lower() == SEARCH:
        return SEARCH, rest.strip()
    return SEARCH, text


def build_text(name: str, options: Mapping[str, object]) -> str:
    """The text grammar from typed options, in the order the spec declares them."""
    spec = COMMANDS[name]
    parts = [] if name in (SEARCH, PAPER) else [name]
    if name == SEARCH:
        parts.append(SEARCH)
    for option in spec.options:
        value = options.get(option.name)
        if value is not None and str(value).strip():
            parts.append(str(value).strip())
    return " ".join(parts)


# ---------------------------------------------------------------------------- handlers


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
    meant = _meant_command(text)
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


def _meant_command(text: str) -> str:
    """`/papers lsit` is a search for "lsit", but the user most likely meant `list`."""
    word = text.strip().lower()
    if " " in word or word in _BY_NAME:
        return ""
    names = [name for name in _BY_NAME if len(name) > 2]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
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
        why = (
            _plain_source_error("", str(exc)) if isinstance(exc, SourceError)
            else "Hugging Face and arXiv did not answer in time"
        )
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
    # "Top" means upvoted: a paper nobody upvoted is never listed as a top paper.
    papers = [p for p in ctx.store.top(since, limit) if p.upvotes]
    note = ""
    if not papers and period == "day":
        # No list today yet (weekends, early morning): show the newest list there is.
        newest = ctx.store.newest_daily_date()
        if newest is not None:
            papers = [p for p in ctx.store.top(newest, limit) if p.upvotes]
            note = f"No Daily Papers list yet today; this is the list of {newest:%a %d %b}."
    if not papers and ctx.store.count() == 0:
        return info(EMPTY_STORE)
    if not papers:
        listed = bool(ctx.store.top(since, 1))
        return info(
            f"No upvoted papers in the last {period}.",
            "Nobody has upvoted the papers of that period on Hugging Face yet; try "
            "`/papers top month`." if listed and period != "month"
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


async def do_subscribe(ctx: Context, text: str) -> Reply:
    if not text.strip():
        return error("Subscribe to what?", "Give a topic, for example `/papers subscribe dpo`.")
    length = len(" ".join(text.split()))
    if length > MAX_TOPIC_CHARS:
        # Checked before anything is written, the same on both databases (PostgreSQL refused
        # it only after the channel row existed; SQLite took any length).
        return error(
            f"That topic is too long ({length} characters; at most {MAX_TOPIC_CHARS}).",
            "Subscribe to a shorter search, for example `/papers subscribe dpo`.",
        )
    if digests.is_hf_top(text):
        text = digests.HF_TOP  # no search: the top of each day's Hugging Face list
    else:
        try:
            query = search.parse_query(text, ctx.now)
        except QueryError as exc:
            return error("That topic is not a search I can run.", str(exc))
        if query.is_empty():
            return error(
                "That topic has no words I can look for.", "Try `/papers subscribe rlhf`."
            )
    key = ctx.inv.channel.key
    channel, created_channel = _channel(ctx)
    sub, created = ctx.store.subscribe(key, text, ctx.now, user=ctx.inv.user.user_id)
    if not created:
        return info(f"This channel already follows {sub.query}.", "See `/papers list`.")
    lines = ["New papers on this topic will appear in this channel's digest."]
    if channel.schedule == "off" and created_channel:
        digest = ctx.settings.digest
        schedule = Schedule.from_stored(digest.schedule, digest.time, digest.timezone)
        _save_schedule(ctx, schedule)
        lines.append(
            f"Digests come {schedule.describe()}; change that with "
            "`/papers schedule daily 09:00 Europe/Berlin` (or weekdays, weekly mon, off)."
        )
    elif channel.schedule == "off":
        lines.append("Digests are off here: turn them on with `/papers schedule daily 09:00`.")
    shown = (
        "the top of each day's Hugging Face Daily Papers" if sub.query == digests.HF_TOP
        else sub.query
    )
    return info(f"Subscribed this channel to {shown}.", "\n".join(lines), ephemeral=False)


async def do_unsubscribe(ctx: Context, text: str) -> Reply:
    key = ctx.inv.channel.key
    subs = ctx.store.subscriptions(key)
    target = text.strip()
    if not target:
        return error("Unsubscribe from what?", "Give the topic or its number from `/papers list`.")
    chosen = None
    if target.isdigit():
        n = int(target)
        if 1 <= n <= len(subs):
            chosen = subs[n - 1]
    else:
        wanted = normalize_topic(target)
        chosen = next((s for s in subs if s.normalized == wanted), None)
    if chosen is None or chosen.id is None:
        listing = _topic_lines(subs) or "This channel follows no topics."
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
    schedule = _schedule_of(ctx, channel)
    lines = [_topic_lines(subs) or "No topics yet: `/papers subscribe dpo` adds one."]
    lines.append(f"Digest: {schedule.describe()}.")
    nxt = schedule.next_slot(ctx.now) if subs else None
    if nxt is not None:
        lines.append(f"Next digest: {local_label(nxt, schedule.timezone)}.")
    if channel is not None and channel.quiet:
        lines.append("Quiet: a digest with nothing new is not posted (`/papers digest quiet off`).")
    if channel is not None and channel.paused_reason:
        lines.append(
            f"Digests are paused: {channel.paused_reason}. Setting a schedule resumes them."
        )
    unknown = ctx.ledger.unknown_summary(ctx.inv.channel.key)
    if unknown.papers:
        lines.append(unknown.line(here=True))
    return info("This channel's topics", "\n".join(lines))


async def do_schedule(ctx: Context, text: str) -> Reply:
    channel, _ = _channel(ctx)
    current = _schedule_of(ctx, channel)
    if not text.strip():
        return info(f"Digests here: {current.describe()}.", f"Change it with {SCHEDULE_EXAMPLE}.")
    try:
        schedule = parse_schedule(text, current)
    except ScheduleError as exc:
        return error("That is not a schedule I understand.", str(exc))
    _save_schedule(ctx, schedule)
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
    "`/papers digest` (preview), `/papers digest post`, `/papers digest quiet on|off`, "
    "`/papers digest resend` (posts whose outcome is unknown)"
)


async def do_digest(ctx: Context, text: str) -> Reply:
    words = text.lower().split()
    if not words:
        return _digest_preview(ctx)
    if words not in (["post"], ["quiet", "on"], ["quiet", "off"], ["resend"]):
        return error(f"`digest {text}` is not something I can do.", f"Try {DIGEST_USAGE}.")
    if not ctx.inv.can_manage:
        return error(
            "Only people who can manage this channel may post digests or change quiet mode.",
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
    if words[0] == "quiet":
        _channel(ctx)
        quiet = words[1] == "on"
        ctx.store.update_channel(ctx.inv.channel.key, quiet=quiet)
        if quiet:
            return info("Quiet mode on.", "A digest with nothing new is not posted.",
                        ephemeral=False)
        return info("Quiet mode off.", "An empty digest says so, with the state of the sources.",
                    ephemeral=False)
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
    plan = digests.plan_for(channel, [s.query for s in subs], slot)
    delivered = ledger.delivered([key]).get(key, set())
    selection = digests.select_one(ctx.store, plan, ctx.now, delivered)
    reply = digests.digest_reply(
        channel, selection, ctx.now, ctx.store.source_states(), topics=plan.topics,
        preview=True,
    )
    assert reply is not None  # previews are never quiet
    schedule = _schedule_of(ctx, channel)
    nxt = schedule.next_slot(ctx.now)
    when = f"Next digest: {local_label(nxt, schedule.timezone)}." if nxt else "Digests are off."
    return replace(reply, footer=" ".join(b for b in (reply.footer, when) if b))


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
                f"{_plain_source_error(state.source, state.last_error)}"
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
    unknown = ledger.unknown_summary(prefix=f"{here_ref.platform}:{here_ref.workspace}:")
    if unknown.papers:
        here = ledger.unknown_summary(ctx.inv.channel.key)
        lines.append(unknown.line())
        if here.papers:
            lines.append(f"In this channel: {here.line(here=True)}")
    return info("paperboy status", "\n".join(lines))


def _plain_source_error(source: str, message: str | None) -> str:
    """A source failure as chat users may read it: the sources' own plain sentences, and
    never an exception's text (older rows may still hold one)."""
    text = (message or "").removeprefix(f"{source}: ")
    if "Errno" in text or "Traceback" in text or len(text) > 160:
        return "the source could not be reached or gave an answer I could not read"
    return text


async def do_help(ctx: Context, text: str) -> Reply:
    wanted = text.strip().lower()
    if wanted and wanted in _BY_NAME:
        spec = COMMANDS[_BY_NAME[wanted]]
        examples = "\n".join(f"`/papers {e}`" for e in spec.examples)
        more = f"\n{SEARCH_EXPLAINED}" if spec.name == SEARCH else ""
        return info(f"/papers {spec.usage}", f"{spec.summary}\n{examples}{more}")
    return info("paperboy: research papers in chat", help_text())


SEARCH_EXPLAINED = (
    "How search finds papers: acronyms work both ways (`llm` also finds \"large language "
    "models\", `vision language models` also finds \"VLMs\"), plurals and hyphens too "
    "(`kv cache` finds \"KV-cache\" and \"key-value cache\"). Papers where your words "
    "stand together, in the title first, come before papers where they are scattered. When "
    "few papers have all your words, the list goes on with papers that have most of them, "
    "after every full match, and the footer says so."
)


def help_text() -> str:
    lines = [f"`/papers {spec.usage}`: {spec.summary}" for spec in COMMANDS.values()]
    lines.append(
        'Search syntax: words (all must match), "exact phrase", OR, -exclude, author:name, '
        "cat:cs.CL, since:2024-06-01 or since:7d, until:, upvotes:>=10, sort:relevance|new|top."
    )
    lines.append(SEARCH_EXPLAINED)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- helpers


def _channel(ctx: Context) -> tuple[Channel, bool]:
    digest = ctx.settings.digest
    return ctx.store.ensure_channel(
        ctx.inv.channel.key,
        ctx.now,
        timezone=digest.timezone,
        digest_time=digest.time,
        max_papers=digest.max_papers,
    )


def _schedule_of(ctx: Context, channel: Channel | None) -> Schedule:
    if channel is None:
        digest = ctx.settings.digest
        return Schedule.from_stored("off", digest.time, digest.timezone)
    return Schedule.from_stored(channel.schedule, channel.digest_time, channel.timezone)


def _save_schedule(ctx: Context, schedule: Schedule) -> None:
    ctx.store.update_channel(
        ctx.inv.channel.key,
        schedule=schedule.stored_kind,
        digest_time=f"{schedule.at:%H:%M}",
        timezone=schedule.timezone,
        next_digest_at=schedule.next_slot(ctx.now),
        paused_reason=None,  # a manager set a schedule here: try posting again
    )


def _topic_lines(subs: list[Subscription]) -> str:
    return "\n".join(
        f"{n}. {s.query}" + (f" ({digests.HF_TOP_LABEL})" if digests.is_hf_top(s.query) else "")
        for n, s in enumerate(subs, 1)
    )


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            SEARCH,
            "Search the paper store (any text that is not a command is a search).",
            "<query>",
            ("dpo", '"reward model" -survey', "author:rafailov since:2023-01-01 sort:top"),
            do_search,
            (Option("query", "What to search for", required=True, rest=True),),
        ),
        CommandSpec(
            PAPER,
            "One paper in detail, by arXiv id or arxiv.org / huggingface.co link.",
            "<arXiv id or URL>",
            ("2305.18290", "https://huggingface.co/papers/2305.18290"),
            do_paper,
            (Option("id", "arXiv id or link, e.g. 2305.18290", required=True, rest=True),),
        ),
        CommandSpec(
            "top",
            "Most upvoted recent papers on Hugging Face.",
            "top [day|week|month]",
            ("top", "top week"),
            do_top,
            (Option("period", "Which period", choices=tuple(TOP_PERIODS)),),
        ),
        CommandSpec(
            "subscribe",
            "Add a topic to this channel's digest (or --hf-top: each day's top Hugging Face "
            "papers).",
            "subscribe <query>",
            ("subscribe dpo", 'subscribe "diffusion model" cat:cs.CV', "subscribe --hf-top"),
            do_subscribe,
            (Option("query", "A search whose new papers go into the digest", True, rest=True),),
            manages_channel=True,
        ),
        CommandSpec(
            "unsubscribe",
            "Remove a topic, by its text or its number in `list`.",
            "unsubscribe <query or number>",
            ("unsubscribe dpo", "unsubscribe 2"),
            do_unsubscribe,
            (Option("topic", "The topic or its number", True, rest=True, autocomplete="topics"),),
            manages_channel=True,
        ),
        CommandSpec(
            "list",
            "This channel's topics, digest schedule and next digest time.",
            "list",
            ("list",),
            do_list,
        ),
        CommandSpec(
            "schedule",
            "When digests come: daily, weekdays, weekly <day>, or off; HH:MM and a time zone.",
            "schedule daily|weekdays|weekly <day>|off [HH:MM] [Area/City]",
            ("schedule daily 09:00 Europe/Berlin", "schedule weekly mon 08:30", "schedule off"),
            do_schedule,
            (
                Option("kind", "How often", True, choices=("daily", "weekdays", "weekly", "off")),
                Option(
                    "day",
                    "Day, for weekly",
                    choices=("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
                ),
                Option("time", "Time of day, HH:MM"),
                Option("timezone", "IANA time zone, e.g. Europe/Berlin", autocomplete="timezones"),
            ),
            manages_channel=True,
        ),
        CommandSpec(
            "digest",
            "Preview this channel's next digest; `post` posts it now, `quiet on` skips empty "
            "digests, `resend` posts again papers whose post had an unknown outcome.",
            "digest [post | resend | quiet on|off]",
            ("digest", "digest post", "digest quiet on"),
            do_digest,
            (Option("action", "Post it now, resend unknown posts, or quiet on/off",
                    choices=("post", "resend", "quiet on", "quiet off")),),
        ),
        CommandSpec(
            "status",
            "How many papers the store has and how its sources are doing.",
            "status",
            ("status",),
            do_status,
        ),
        CommandSpec(
            "help",
            "This help, or help on one command.",
            "help [command]",
            ("help", "help schedule"),
            do_help,
            (Option("command", "A command name"),),
        ),
    )
}

_BY_NAME: dict[str, str] = {
    alias: spec.name for spec in COMMANDS.values() for alias in (spec.name, *spec.aliases)
}
