"""Platform-neutral value types that cross the core/adapter boundary.

Adapters translate platform payloads into `Invocation`s and render `Reply`s; nothing in here
knows Slack or Discord. Text in these types is plain text: adapters escape and format it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from bot.links import github_url, safe_url

__all__ = [
    "Answer",
    "ChannelRef",
    "Invocation",
    "PaperCard",
    "Pending",
    "ReactionEvent",
    "Reply",
    "ReplyKind",
    "UserRef",
    "error",
    "info",
    "is_direct_key",
    "safe_url",  # the one URL check before a URL becomes a link (bot.links)
    "shorten",
]


# The channel part of a direct-message ref (`slack:T1:@U123`): no platform's channel id starts
# with it.
DIRECT = "@"


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """Where a command came from or a digest goes: `platform:workspace:channel`."""

    platform: str
    workspace: str
    channel: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}"

    @classmethod
    def parse(cls, key: str) -> ChannelRef:
        parts = key.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(
                f"channel key {key!r} is not of the form platform:workspace:channel "
                "(for example slack:T0123:C0456)"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return self.key

    @property
    def is_direct(self) -> bool:
        """A direct message to one user (`slack:T1:@U123`): the channel is `@<user id>`
        (personal watches; adapters open the DM)."""
        return self.channel.startswith(DIRECT)

    @property
    def user_id(self) -> str:
        """The user a direct-message ref goes to ("" for a channel)."""
        return self.channel.removeprefix(DIRECT) if self.is_direct else ""

    @classmethod
    def direct(cls, platform: str, workspace: str, user_id: str) -> ChannelRef:
        return cls(platform, workspace, DIRECT + user_id)


def is_direct_key(key: str) -> bool:
    """Whether a channel key (`slack:T1:@U123`) is a direct message to one user."""
    return key.split(":", 2)[-1].startswith(DIRECT)


@dataclass(frozen=True, slots=True)
class UserRef:
    platform: str
    user_id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Invocation:
    """One `/papers ...` command: the text after `/papers`, who typed it and where."""

    text: str
    channel: ChannelRef
    user: UserRef
    # Adapters set this when the user may change channel settings (Discord: Manage Channels).
    can_manage: bool = True
    # The workspace a user's own things (watches) belong to; None: the channel's. Discord
    # user ids are global, so its adapter sets the one DM workspace ("dm") there.
    user_home: str | None = None

    @property
    def direct(self) -> ChannelRef:
        """The direct-message ref of the user who typed this (where their watches go)."""
        home = self.user_home or self.channel.workspace
        return ChannelRef.direct(self.channel.platform, home, self.user.user_id)


@dataclass(frozen=True, slots=True)
class ReactionEvent:
    """Someone put (`added`) or took back an emoji on a message in a channel. Adapters pass
    what the platform sent, unjudged; the core decides whether it is a 👍/👎 on one of its
    posts. `message_ref` is the message as the ledger stores posts (Slack "C123:1712.0001",
    Discord the message id); `event_id` and `event_at` (epoch seconds), when the platform
    gives them, let a redelivered event count once."""

    channel: ChannelRef
    message_ref: str
    user_id: str
    emoji: str
    added: bool
    event_id: str | None = None
    event_at: float | None = None


class ReplyKind(StrEnum):
    RESULTS = "results"  # search results or a top list
    PAPER = "paper"  # one paper in detail
    DIGEST = "digest"
    INFO = "info"  # confirmations, lists, help, status
    ERROR = "error"  # the user typed something we cannot do; text says why and how


# An abstract longer than this is "long": a list then shows the Hugging Face one-line summary
# in its place when there is one. 240 characters is the shortest excerpt any renderer shows
# (the console), so an abstract up to that length is shown whole on every platform.
LONG_ABSTRACT = 240
ORGANIZATION_CHARS = 80  # Hugging Face's organization is free text: a name, not a paragraph
VENUE_CHARS = 60  # bot.venues labels are short ("EMNLP 2024 Findings"); cap whatever comes


@dataclass(frozen=True, slots=True)
class PaperCard:
    """What a user sees of one paper."""

    id: str
    title: str
    url: str
    authors: tuple[str, ...] = ()
    published: date | None = None
    upvotes: int = 0
    comments: int = 0
    categories: tuple[str, ...] = ()
    abstract: str = ""
    summary: str = ""  # the Hugging Face one-line AI summary, when known
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    organization: str | None = None  # the authors' organization on Hugging Face
    venue: str | None = None  # where it was accepted: "NeurIPS 2025" (bot.venues label)
    hf_url: str | None = None
    matched_topics: tuple[str, ...] = ()  # digests: which subscriptions matched
    score: float = 0.0
    # Digests: why the channel's reactions moved it ("like 2 papers 👍'd here"; bot.taste).
    reason: str = ""

    def short_authors(self, limit: int = 3) -> str:
        if not self.authors:
            return ""
        if len(self.authors) <= limit:
            return ", ".join(self.authors)
        return f"{', '.join(self.authors[:limit])} et al."

    def facts(self, authors: int = 3) -> list[str]:
        """The pieces of the line under a paper's title, in plain text (renderers escape them
        and add their own): authors, organization, the publication date, venue, `▲ upvotes`."""
        bits = [
            self.short_authors(authors),
            shorten(self.organization or "", ORGANIZATION_CHARS),
            _date(self.published),
            shorten(self.venue or "", VENUE_CHARS),
        ]
        if self.upvotes:
            bits.append(f"▲ {self.upvotes}")
        return [bit for bit in bits if bit]

    @property
    def code_url(self) -> str | None:
        """The code repository when it is a checked https GitHub URL (the only code link)."""
        return github_url(self.github_repo)

    @property
    def stars(self) -> str:
        """`★ 1,234` for the code repository, or "" when unknown or zero."""
        return f"★ {self.github_stars:,}" if self.github_stars else ""

    def blurb(self, limit: int = 280) -> str:
        """The abstract cut at a word; when the abstract is long (`LONG_ABSTRACT`) and Hugging
        Face has a one-line summary, that summary instead."""
        long_abstract = len(" ".join(self.abstract.split())) > LONG_ABSTRACT
        text = self.summary if self.summary.strip() and long_abstract else self.abstract
        return shorten(text or self.summary, limit)


@dataclass(frozen=True, slots=True)
class Reply:
    """A platform-neutral answer.

    `title` is a one-line heading; `text` is the body (plain text, may hold `inline code`);
    `cards` are papers; `more` counts papers left out ("+N more"); `footer` is a quiet line.
    `ephemeral` answers are shown only to the user who asked (where the platform can).
    """

    kind: ReplyKind
    title: str
    text: str = ""
    cards: tuple[PaperCard, ...] = ()
    more: int = 0
    footer: str = ""
    ephemeral: bool = False
    # For a search: the query, so adapters can offer "Subscribe this channel" / "Share".
    query: str | None = None
    # A reply in a post's thread: the parent post's message ref as the ledger stores it
    # (Slack "C123:1712.0001", Discord "<message id>[,<id of a continuation>...]"). Adapters
    # post it in that thread (Slack thread_ts, Discord a reply), never as a new top-level post.
    thread_of: str | None = None

    @property
    def is_error(self) -> bool:
        return self.kind is ReplyKind.ERROR

    def plain_text(self) -> str:
        """A readable plain-text rendering: notifications, logs, the console and tests."""
        lines = [self.title] if self.title else []
        if self.text:
            lines.append(self.text)
        for n, card in enumerate(self.cards, 1):
            lines.append(f"{n}. {card.title}")
            facts = card.facts()
            if facts:
                lines.append("   " + " · ".join(facts))
            if card.matched_topics:
                lines.append("   topics: " + ", ".join(card.matched_topics))
            if card.reason:
                lines.append(f"   {card.reason}")
            lines.append(f"   {card.url}")
        if self.more:
            lines.append(f"+{self.more} more")
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Pending:
    """An answer that is not ready within a platform's ack window (a remote lookup, seconds of
    store work, a slow database): the adapter acks now (Slack: "Looking that up…"; Discord: a
    deferred "thinking" response, `ephemeral` fixed then), and sends `await pending.reply()`
    when it comes. `reply()` never raises: failures come back as an error `Reply`. The work
    runs once: a second `reply()` (an adapter retrying its send) gets the same answer rather
    than, say, posting a digest again."""

    finish: Callable[[], Awaitable[Reply]] = field(repr=False)
    ephemeral: bool = True  # the final answer is shown only to whoever asked
    _run: list[asyncio.Future[Reply]] = field(default_factory=list, repr=False, compare=False)

    async def reply(self) -> Reply:
        if not self._run:
            self._run.append(asyncio.ensure_future(self.finish()))
        return await self._run[0]


# What `BotService.handle` returns: the answer, or how to get it after acking the platform.
Answer = Reply | Pending


def error(title: str, text: str = "") -> Reply:
    return Reply(kind=ReplyKind.ERROR, title=title, text=text, ephemeral=True)


def info(title: str, text: str = "", *, ephemeral: bool = True) -> Reply:
    return Reply(kind=ReplyKind.INFO, title=title, text=text, ephemeral=ephemeral)


# A button click whose payload an adapter cannot read: a paper's button (no arXiv id, no
# channel or user), and any other button.
UNREADABLE_BUTTON = error("Sorry, I could not read that button.", "Try `/papers like <arXiv id>`.")
UNREADABLE_CLICK = error(
    "Sorry, I could not read that button.", "Type the command instead, for example `/papers dpo`."
)


def shorten(text: str, limit: int, placeholder: str = "…") -> str:
    """Cut `text` to at most `limit` characters at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(placeholder), 0)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + placeholder


def _date(value: date | None) -> str:
    return value.isoformat() if value else ""
