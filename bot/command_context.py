"""What every `/papers` handler works with: the `Context` of one invocation, `CommandSpec` and
its `Option`s and `Example`s (the registry itself is `bot.commands`), and the channel helpers
several handlers share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from bot import digest as digests, search
from bot.config import Settings
from bot.errors import QueryError, SourceError
from bot.ledger import Ledger
from bot.messages import Invocation, Reply, error
from bot.models import Channel, Subscription
from bot.ports import Outbox, PaperLookup
from bot.schedules import Schedule
from bot.store import PaperStore

EMPTY_STORE = "The store is empty: run `paperboy fetch` (or `paperboy demo` to try it out)."


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
    command_names: Collection[str] = ()  # for "did you mean `/papers list`?"


@dataclass(frozen=True)
class Later:
    """A handler's answer that needs the network (a paper not in the store, too few local
    hits): the service acks the platform first, then awaits `finish()`."""

    finish: Callable[[], Awaitable[Reply]]


Handler = Callable[[Context, str], Awaitable[Reply | Later]]


@dataclass(frozen=True)
class Option:
    """A typed argument, for platforms with typed options (Discord). `autocomplete`: `topics`
    (this channel's subscriptions), `watches` (the user's own watches) or `timezones`."""

    name: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    autocomplete: str | None = None


@dataclass(frozen=True)
class Example:
    """`/papers <text>` as help shows it, and words its answer shows (tests/test_commands.py
    runs every example against the test papers); `after`: commands typed before it."""

    text: str
    shows: str
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    usage: str
    examples: tuple[Example, ...]
    handler: Handler
    options: tuple[Option, ...] = ()
    manages_channel: bool = False  # changes channel settings: may need a permission


def ensure_channel(ctx: Context) -> tuple[Channel, bool]:
    digest = ctx.settings.digest
    return ctx.store.ensure_channel(
        ctx.inv.channel.key,
        ctx.now,
        timezone=digest.timezone,
        digest_time=digest.time,
        max_papers=digest.max_papers,
    )


def schedule_of(ctx: Context, channel: Channel | None) -> Schedule:
    if channel is None:
        digest = ctx.settings.digest
        return Schedule.from_stored("off", digest.time, digest.timezone)
    return Schedule.from_stored(channel.schedule, channel.digest_time, channel.timezone)


def save_schedule(ctx: Context, schedule: Schedule) -> None:
    ctx.store.update_channel(
        ctx.inv.channel.key,
        schedule=schedule.stored_kind,
        digest_time=f"{schedule.at:%H:%M}",
        timezone=schedule.timezone,
        next_digest_at=schedule.next_slot(ctx.now),
        paused_reason=None,  # a manager set a schedule here: try posting again
    )


def topic_lines(subs: list[Subscription]) -> str:
    return "\n".join(
        f"{n}. {s.query}" + (f" ({digests.HF_TOP_LABEL})" if digests.is_hf_top(s.query) else "")
        for n, s in enumerate(subs, 1)
    )


def chosen_topic(
    subs: list[Subscription], target: str, normalize: Callable[[str], str]
) -> Subscription | None:
    """The topic `target` names: its number in `topic_lines`, else its text as `normalize`d
    (unsubscribe and unwatch)."""
    if target.isascii() and target.isdigit():  # "²" is a digit to isdigit, not to int
        n = int(target)
        return subs[n - 1] if 1 <= n <= len(subs) else None
    wanted = normalize(target)
    return next((s for s in subs if s.normalized == wanted), None)


def plain_source_error(source: str, message: str | None) -> str:
    """A source failure as chat users may read it: the sources' own plain sentences, and
    never an exception's text (older rows may still hold one)."""
    text = (message or "").removeprefix(f"{source}: ")
    if "Errno" in text or "Traceback" in text or len(text) > 160:
        return "the source could not be reached or gave an answer I could not read"
    return text


def lookup_failed(exc: SourceError | TimeoutError) -> str:
    """Why looking a paper up remotely failed, in a sentence users may read."""
    if isinstance(exc, SourceError):
        return plain_source_error("", str(exc))
    return "Hugging Face and arXiv did not answer in time"


MAX_TOPIC_CHARS = 500  # Subscription.normalized holds 500 (a topic is one search, not a page)


def standing_query_error(text: str, now: datetime, noun: str, command: str) -> Reply | None:
    """Why `text` cannot be a standing search (`noun`: a channel's "topic", a person's
    "watch"), in one line, else None. Checked before anything is written, the same on both
    databases (PostgreSQL refused an over-long topic only after the channel row existed)."""
    length = len(" ".join(text.split()))
    if length > MAX_TOPIC_CHARS:
        return error(
            f"That {noun} is too long ({length} characters; at most {MAX_TOPIC_CHARS}).",
            f"Try a shorter search, for example `{command} dpo`.",
        )
    if digests.is_hf_top(text):
        return None  # no search: the top of each day's Hugging Face list
    try:
        query = search.parse_query(text, now)
    except QueryError as exc:
        return error(f"That {noun} is not a search I can run.", str(exc))
    if query.is_empty():
        return error(f"That {noun} has no words I can look for.", f"Try `{command} rlhf`.")
    if query.is_dates_only():  # follows every paper, or none
        return error(
            f"A {noun} needs words or a filter besides dates: "
            f"`{command} dpo until:2025-01-01` or `{command} has:code`."
        )
    return None
