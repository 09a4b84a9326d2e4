"""Discord: the `/papers` application command group, embed rendering and digest posts.

Three translations and nothing else: an interaction's typed options -> `Invocation` (through the
core's text grammar, `bot.commands.build_text`); `Reply` -> Discord messages (`render`, pure);
`(ChannelRef, Reply)` -> a REST post (`DiscordAdapter.send`).

Inside this file `import discord` is the SDK (absolute imports); run the bot with `python -m bot`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import logging
import re
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import aiohttp
import discord
from discord import app_commands

from bot.commands import COMMANDS, CommandSpec, build_text
from bot.config import DiscordSettings
from bot.messages import (
    ChannelRef,
    Invocation,
    PaperCard,
    Pending,
    Reply,
    ReplyKind,
    UserRef,
    safe_url,
)
from bot.ports import (
    RESEND,
    UNCONFIRMED,
    ConfigError,
    DeliveryError,
    Reconciled,
    keep_secret,
    one_line_when_unreachable,
)
from bot.service import BotService

logger = logging.getLogger(__name__)
# discord.py's gateway logs a traceback per reconnect attempt while Discord is unreachable;
# an operator gets one line per attempt instead (the runtime's own retries say the same).
one_line_when_unreachable(logging.getLogger("discord.client"), "Discord")
one_line_when_unreachable(logger, "Discord")

PLATFORM = "discord"
GROUP_NAME = "papers"
GROUP_DESCRIPTION = "Research papers: search, paper details, topics and digests for this channel"

# Discord message limits (platforms.md D-MSG-1). A violation is a 400 (50035), i.e. a lost post.
CONTENT_MAX = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL_MAX = 6000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
# Application command limits (D-INT-3).
COMMAND_DESCRIPTION_MAX = 100
CHOICE_MAX = 25
NONCE_MAX = 25
# Discord dedupes a nonce "in the past few minutes" (the exact window is not documented):
# resend an unknown post only well inside it. Ticks are 30 s apart by default.
NONCE_WINDOW = timedelta(minutes=2)
UNKNOWN_MESSAGE = 10008  # Discord's error code

# An interaction token lasts 15 minutes (D-INT-2); buttons on an answer stop a little earlier.
VIEW_TIMEOUT = 14 * 60
# discord.py sleeps on a 429 before retrying; above this wait it raises `RateLimited` instead,
# so a digest tick is never parked for minutes (the ledger retries after `retry_after`).
MAX_RATELIMIT_WAIT = 30.0

COLOURS = {
    ReplyKind.RESULTS: 0x5865F2,
    ReplyKind.PAPER: 0x5865F2,
    ReplyKind.DIGEST: 0x57F287,
    ReplyKind.INFO: 0x99AAB5,
    ReplyKind.ERROR: 0xED4245,
}

GUILD_REMOVED = "the bot was removed from this Discord server; invite it again to resume"


def no_mentions() -> discord.AllowedMentions:
    """Every message the bot sends pings nobody: paper titles and queries are untrusted text."""
    return discord.AllowedMentions.none()


# ---------------------------------------------------------------------------- rendering


def neutralise(text: str) -> str:
    """Break `@everyone`, `@here`, `<@id>` and `<@&id>` (defence in depth behind
    `allowed_mentions`, which already stops every ping), and `[label](url)` masked links (a
    zero-width space after `]`), in our own texts that quote what a user typed."""
    return discord.utils.escape_mentions(text).replace("](", "]\u200b(")


# Discord hides a backslash before any ASCII punctuation, so escaping is invisible. These are
# the characters that start or end formatting, links (`[..](..)`, `<url>`), mentions, custom
# emoji and timestamps (`<...>`), spoilers and quotes anywhere in a line.
_MARKDOWN_CHARS = re.compile(r"([\\*_~`|<>\[\]()])")
# Headings (`#`), subtext (`-#`), lists (`-`, `*`, `+`) and quotes only start a line.
_LINE_START = re.compile(r"^(\s*)([#>+-])", re.MULTILINE)
# C0/C1 controls other than newline and tab (and bidi overrides that reorder what is read).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """Paper text (titles, authors, abstracts) as literal text: no markdown, no links, no
    mentions. discord.py's `escape_markdown` leaves URLs and `[..](..)` alone, so a masked link
    in an abstract would still be a link: every formatting character is escaped instead."""
    text = _CONTROL.sub("", text)
    text = _MARKDOWN_CHARS.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    return neutralise(text)


def clip(text: str, limit: int, placeholder: str = "…") -> str:
    """Cut `text` to at most `limit` characters, at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(placeholder), 0)]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit // 2:
        cut = cut[:space]
    cut = cut.rstrip()
    # An escaped character cut in half would leave a lone backslash escaping the placeholder.
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + placeholder


def _chunks(text: str, limit: int) -> list[str]:
    """Split text into pieces of at most `limit` characters, at line or word boundaries."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _meta(card: PaperCard, authors: int = 3) -> str:
    bits = [escape(card.short_authors(authors))] if card.authors else []
    if card.published:
        bits.append(card.published.isoformat())
    if card.upvotes:
        bits.append(f"▲ {card.upvotes}")
    if card.comments:
        bits.append(f"💬 {card.comments}")
    return " · ".join(bits)


def _links(card: PaperCard) -> str:
    """Markdown links with our own labels; a URL the shared validator rejects is left out
    (Hugging Face's `github_repo`/`project_page` are free text, and `[..](url)` would show
    whatever label and target they carry)."""
    stars = f" ★ {card.github_stars:,}" if card.github_stars else ""
    candidates = (
        ("arXiv", card.url),
        ("Hugging Face", card.hf_url),
        (f"GitHub{stars}", card.github_repo),
        ("Project page", card.project_page),
    )
    links = []
    for label, url in candidates:
        checked = safe_url(url)
        if checked:
            links.append(f"[{label}]({checked})")
    return " · ".join(links)


def card_embed(card: PaperCard, number: int | None, colour: int) -> discord.Embed:
    """One paper in a list (search results, top, digest)."""
    prefix = f"{number}. " if number is not None else ""
    parts = [_meta(card)]
    blurb = card.blurb(300)
    if blurb:
        parts.append(escape(blurb))
    if card.matched_topics:
        parts.append(clip("Topics: " + escape(", ".join(card.matched_topics)), 300))
    parts.append(_links(card))
    embed = discord.Embed(
        title=clip(prefix + neutralise(_title(card)), TITLE_MAX),
        url=safe_url(card.url),
        description=clip("\n".join(p for p in parts if p.strip()), 1800),
        colour=colour,
    )
    return embed


def _title(card: PaperCard) -> str:
    # Discord trims whitespace and rejects an empty title field; a paper always has its id.
    return " ".join(card.title.split()) or f"arXiv:{card.id}"


def _field(embed: discord.Embed, name: str, value: str, *, inline: bool = True) -> None:
    """Add a field only when it has something to show (Discord rejects blank values)."""
    value = clip(value.strip(), FIELD_VALUE_MAX)
    if value:
        embed.add_field(name=name, value=value, inline=inline)


def paper_embed(card: PaperCard) -> discord.Embed:
    """One paper in detail: the abstract, authors, dates, counts and links."""
    abstract = escape(card.abstract.strip())
    embed = discord.Embed(
        title=clip(neutralise(_title(card)), TITLE_MAX),
        url=safe_url(card.url),
        description=clip(abstract, DESCRIPTION_MAX) if abstract else None,
        colour=COLOURS[ReplyKind.PAPER],
    )
    _field(embed, "Authors", escape(card.short_authors(12)), inline=False)
    _field(embed, "In one line", escape(card.summary), inline=False)
    if card.published:
        _field(embed, "Published", card.published.isoformat())
    if card.upvotes:
        _field(embed, "Upvotes", f"▲ {card.upvotes}")
    _field(embed, "Categories", escape(" ".join(c for c in card.categories if c.strip())))
    _field(embed, "Links", _links(card), inline=False)
    embed.set_footer(text=f"arXiv:{card.id}")
    return _fit(embed)


def _notice_embeds(reply: Reply) -> list[discord.Embed]:
    """Info, help, status, errors and empty results: a title and text, split if long."""
    colour = COLOURS[reply.kind]
    title = neutralise(" ".join(reply.title.split()))
    text = neutralise(reply.text.strip())
    if not title and not text:
        title = "Nothing to show."
    if len(title) > TITLE_MAX:  # keep every word: the rest of the title opens the text
        text = f"…{title[TITLE_MAX - 1:]}\n{text}".strip()
        title = title[: TITLE_MAX - 1] + "…"
    pieces = _chunks(text, DESCRIPTION_MAX) or [""]
    embeds = []
    for n, piece in enumerate(pieces):
        embed = discord.Embed(
            title=(title or None) if n == 0 else None,
            description=piece or None,
            colour=colour,
        )
        embeds.append(embed)
    return embeds


def _fit(embed: discord.Embed) -> discord.Embed:
    """Shrink the description so one embed alone stays within the 6,000-character total."""
    excess = len(embed) - EMBED_TOTAL_MAX
    if excess > 0 and embed.description:
        embed.description = clip(embed.description, max(len(embed.description) - excess, 1))
    return embed


def _footer_text(reply: Reply) -> str:
    bits = []
    if reply.more:
        bits.append(f"+{reply.more} more")
    if reply.footer.strip():
        bits.append(neutralise(reply.footer.strip()))
    return clip(" · ".join(bits), FOOTER_MAX)


def _header(reply: Reply) -> str:
    title = " ".join(reply.title.split())
    lines = [f"**{neutralise(title)}**"] if title else []
    if reply.text.strip():
        lines.append(neutralise(reply.text.strip()))
    return clip("\n".join(lines), CONTENT_MAX)


def render(reply: Reply) -> list[dict[str, Any]]:
    """A reply as Discord messages: keyword arguments for `send`/`send_message`/`followup.send`.

    Every message carries `allowed_mentions=none`. Papers become embeds (one each) packed into
    messages of at most 10 embeds and 6,000 embed characters; messages after the first are
    marked as continued. Papers are split across messages, never dropped.
    """
    if not reply.cards:
        embeds = _notice_embeds(reply)
        header = ""
    elif reply.kind is ReplyKind.PAPER:
        embeds = [paper_embed(card) for card in reply.cards]
        header = ""
    else:
        colour = COLOURS[reply.kind]
        embeds = [card_embed(card, n, colour) for n, card in enumerate(reply.cards, 1)]
        header = _header(reply)
    footer = _footer_text(reply)
    if footer:
        embeds[-1].set_footer(text=footer)
        _fit(embeds[-1])
    batches: list[list[discord.Embed]] = [[]]
    size = 0
    for embed in embeds:
        if len(batches[-1]) >= EMBEDS_PER_MESSAGE or size + len(embed) > EMBED_TOTAL_MAX:
            batches.append([])
            size = 0
        batches[-1].append(embed)
        size += len(embed)
    total = len(batches)
    messages: list[dict[str, Any]] = []
    for n, batch in enumerate(batches, 1):
        message: dict[str, Any] = {"embeds": batch, "allowed_mentions": no_mentions()}
        if n == 1 and header:
            message["content"] = header
        elif n > 1:
            title = clip(neutralise(" ".join(reply.title.split())), 200)
            marker = f"(continued, {n}/{total})"
            message["content"] = f"**{title}** {marker}" if title else marker
        messages.append(message)
    return messages


# ----------------------------------------------------------------------------- inbound


class InteractionLike(Protocol):
    """The parts of `discord.Interaction` this adapter reads (tests pass a namespace)."""

    guild_id: int | None
    channel_id: int | None
    user: discord.abc.User
    permissions: discord.Permissions
    response: discord.InteractionResponse[Any]
    followup: discord.Webhook


def channel_ref(guild_id: int | None, channel_id: int | None) -> ChannelRef:
    """`discord:<guild>:<channel>`; direct messages use `dm` as the workspace."""
    return ChannelRef(PLATFORM, str(guild_id) if guild_id else "dm", str(channel_id or 0))


def to_invocation(
    interaction: InteractionLike | discord.Interaction[Any],
    text: str,
    *,
    manage_permission: bool = True,
) -> Invocation:
    """A `/papers` interaction as the core's invocation.

    `can_manage`: in a server, the user's Manage Channels permission in this channel (Discord
    resolves overwrites and Administrator into `interaction.permissions`); in a DM, always.
    """
    perms = interaction.permissions
    in_dm = interaction.guild_id is None
    can_manage = (
        in_dm or not manage_permission or bool(perms.manage_channels or perms.administrator)
    )
    user = interaction.user
    return Invocation(
        text=text,
        channel=channel_ref(interaction.guild_id, interaction.channel_id),
        user=UserRef(PLATFORM, str(user.id), getattr(user, "name", None)),
        can_manage=can_manage,
    )


@lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    # Only Area/City names people pick; the legacy aliases (EST5EDT, Etc/GMT+3...) confuse.
    return tuple(
        sorted(
            z
            for z in zoneinfo.available_timezones()
            if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/"))
        )
    )


def timezone_choices(current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 IANA zones matching what the user typed so far (prefix matches first)."""
    wanted = current.strip().lower().replace(" ", "_")[:64]
    if not wanted:
        picks = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York",
                 "America/Los_Angeles", "Asia/Tokyo", "Asia/Shanghai", "Asia/Kolkata",
                 "Australia/Sydney"]
    else:
        zones = _zones() + ("UTC",)
        prefix = [z for z in zones if z.lower().startswith(wanted)]
        city = [z for z in zones if z.lower().split("/")[-1].startswith(wanted)]
        inner = [z for z in zones if wanted in z.lower()]
        picks = list(dict.fromkeys(prefix + city + inner))
    return [app_commands.Choice(name=z, value=z) for z in picks[:CHOICE_MAX]]


def topic_choices(topics: Sequence[str], current: str) -> list[app_commands.Choice[str]]:
    """This channel's topics matching the partial input; a topic too long for a choice value
    (100 characters) is chosen by its number, which `unsubscribe` also accepts."""
    wanted = " ".join(current.lower().split())
    choices = []
    for n, topic in enumerate(topics, 1):
        if wanted and wanted not in topic.lower() and wanted != str(n):
            continue
        value = topic if len(topic) <= 100 else str(n)
        choices.append(app_commands.Choice(name=clip(f"{n}. {topic}", 100), value=value))
    return choices[:CHOICE_MAX]


CommandRunner = Callable[[Any, str, dict[str, Any]], Awaitable[None]]
Autocompleter = Callable[[Any, str], Awaitable[list[app_commands.Choice[str]]]]


def _command(
    spec: CommandSpec, run: CommandRunner, autocompleters: dict[str, Autocompleter]
) -> app_commands.Command[Any, ..., None]:
    """One subcommand generated from a `CommandSpec`: typed string options, choices,
    autocomplete. discord.py reads the options from the callback's signature, so the callback
    carries a synthetic `__signature__` with one parameter per option."""

    async def callback(interaction: discord.Interaction[Any], **options: Any) -> None:
        await run(interaction, spec.name, options)

    params = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=discord.Interaction,
        )
    ]
    descriptions: dict[str, str] = {}
    choices: dict[str, list[app_commands.Choice[str]]] = {}
    autocomplete: dict[str, Autocompleter] = {}
    # Discord requires required options before optional ones.
    for option in sorted(spec.options, key=lambda o: not o.required):
        params.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str if option.required else str | None,
                default=inspect.Parameter.empty if option.required else None,
            )
        )
        descriptions[option.name] = clip(option.description, COMMAND_DESCRIPTION_MAX)
        if option.choices:
            choices[option.name] = [
                app_commands.Choice(name=c, value=c) for c in option.choices[:CHOICE_MAX]
            ]
        elif option.autocomplete in autocompleters:
            autocomplete[option.name] = autocompleters[option.autocomplete]
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = descriptions  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_choices__ = choices  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_autocomplete__ = autocomplete  # type: ignore[attr-defined]
    return app_commands.Command(
        name=spec.name,
        description=clip(spec.summary.replace("`", ""), COMMAND_DESCRIPTION_MAX),
        callback=callback,
    )


def build_group(run: CommandRunner, autocompleters: dict[str, Autocompleter]) -> app_commands.Group:
    """`/papers <sub>` with one subcommand per entry of the core's registry, in its order.

    Discord accepts `default_member_permissions` only on top-level commands, not on
    subcommands, so the Manage Channels rule for subscribe/unsubscribe/schedule is enforced
    per invocation (`Invocation.can_manage`) rather than in the command payload.
    """
    group = app_commands.Group(name=GROUP_NAME, description=GROUP_DESCRIPTION)
    for spec in COMMANDS.values():
        group.add_command(_command(spec, run, autocompleters))
    return group


class _Tree(app_commands.CommandTree[Any]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        logger.error("interaction failed: %s", error, exc_info=error)
        if not interaction.response.is_done():
            await interaction.response.send_message(
                "Sorry, something went wrong on my side. Try again in a moment.",
                ephemeral=True,
                allowed_mentions=no_mentions(),
            )


def build_client(settings: DiscordSettings) -> discord.Client:
    """The gateway client: minimal intents (guild events only, no message content);
    `AutoShardedClient` when `[discord] shards` is set."""
    intents = discord.Intents.none()
    intents.guilds = True  # on_guild_remove, and discord.py needs guilds for sane caches
    if settings.shards:
        return discord.AutoShardedClient(
            intents=intents, shard_count=settings.shards, max_ratelimit_timeout=MAX_RATELIMIT_WAIT
        )
    return discord.Client(intents=intents, max_ratelimit_timeout=MAX_RATELIMIT_WAIT)


# ---------------------------------------------------------------------------- outbound


def make_nonce(idempotency_key: str, part: int = 0) -> str:
    """A deterministic nonce (<= 25 chars) per delivery and message part.

    Discord collapses a repeated nonce from the same author within a few minutes into the first
    message (`enforce_nonce`), so discord.py's own retry after a 5xx cannot post twice. Each part
    of a split digest needs its own nonce, or part 2 would come back as part 1.
    """
    raw = f"{idempotency_key}#{part}"
    if part == 0 and len(idempotency_key) <= NONCE_MAX:
        return idempotency_key
    digest = hashlib.sha256(raw.encode()).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:NONCE_MAX]


def delivery_error(exc: BaseException, *, posted: Sequence[str] = ()) -> DeliveryError:
    """Map a failed post to the ledger's vocabulary.

    403 (Missing Access 50001, Missing Permissions 50013) and 404 (Unknown Channel 10003):
    `gone`, the ledger pauses the channel. 429: `retry_after`. 5xx, timeouts and connection
    errors: `ambiguous` (Discord may have created the message). A failure after earlier parts
    of a split digest were posted is ambiguous too: resending would repeat those parts.
    """
    where = f" after posting {len(posted)} part(s): {', '.join(posted)}" if posted else ""
    if isinstance(exc, discord.NotFound) and exc.code == UNKNOWN_MESSAGE:
        # A resend whose nonce matched a message someone deleted meanwhile (wave2.md DN-3):
        # the channel is fine; that digest was removed on purpose, so it is not posted again.
        return DeliveryError(f"the digest message was deleted in the channel{where}", final=True)
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return DeliveryError(
            f"Discord refused the post ({exc.status} {exc.code}: {exc.text}){where}", gone=True
        )
    if posted:
        return DeliveryError(f"Discord post failed ({exc!r}){where}", ambiguous=True)
    if isinstance(exc, discord.RateLimited):
        return DeliveryError("Discord rate limit", retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:
            return DeliveryError("Discord rate limit", retry_after=_retry_after(exc))
        if exc.status >= 500:
            return DeliveryError(f"Discord {exc.status}: {exc.text}", ambiguous=True)
        # 400 and friends: Discord rejected the message itself; nothing was created.
        return DeliveryError(f"Discord rejected the post ({exc.status} {exc.code}: {exc.text})")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | OSError):
        return DeliveryError(f"no clear answer from Discord ({exc!r})", ambiguous=True)
    # Unknown failure: assume the worst for "never twice" (the reconciler checks the nonce).
    return DeliveryError(f"unexpected error posting to Discord ({exc!r})", ambiguous=True)


def _retry_after(exc: discord.HTTPException) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(float(headers.get("Retry-After", 5.0)), 0.0)
    except (TypeError, ValueError):
        return 5.0


ChannelGetter = Callable[[int], "discord.abc.Messageable"]


# ----------------------------------------------------------------------------- adapter


class DiscordAdapter:
    """The Discord platform: `/papers` interactions in, digest posts out."""

    platform = PLATFORM

    def __init__(
        self,
        service: BotService,
        *,
        token: str | None,
        settings: DiscordSettings | None = None,
        client: discord.Client | None = None,
        channel_getter: ChannelGetter | None = None,
    ) -> None:
        self.service = service
        self.token = token
        keep_secret(token)
        self.settings = settings or DiscordSettings()
        self.client = client or build_client(self.settings)
        self.tree = _Tree(self.client)
        self.group = build_group(
            self.run_command,
            {"topics": self.autocomplete_topics, "timezones": self.autocomplete_timezones},
        )
        self.tree.add_command(self.group)
        # No guild cache needed: a partial messageable is an id plus the REST client.
        self.channel_getter: ChannelGetter = channel_getter or self.client.get_partial_messageable
        self.client.event(self.on_guild_remove)
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Log in over REST (a bad token fails here, naming it), then run the gateway in a
        task. Commands are not synced here: that is `paperboy discord sync`."""
        if self._task is not None:
            return
        await self.open_for_posting()
        self._task = asyncio.create_task(self._connect(), name="discord-gateway")

    async def open_for_posting(self) -> None:
        """Ready to post without the gateway (`paperboy digest --channel`): posts are REST
        calls, which need only the login; a running bot keeps its own gateway session."""
        if not self.token:
            raise ConfigError("DISCORD_TOKEN is not set")
        try:
            await self.client.login(self.token)
        except discord.LoginFailure as exc:
            raise ConfigError(f"DISCORD_TOKEN was rejected by Discord: {exc}") from None

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except Exception:
            logger.exception("Discord gateway stopped")
        finally:
            self.finished.set()

    async def stop(self) -> None:
        """Close the session. `finished` is set only by the gateway task ending: a stop after
        a failed login (the runtime retrying an unreachable Discord) must not end the bot."""
        if not self.client.is_closed():
            await self.client.close()
        if self._task is not None:
            # close() ends the gateway loop; cancel covers a connect still waiting to retry.
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        # A closed client stays closed (its gateway loop would end at once): reopen it, so
        # the runtime's next start() after a failed attempt really connects. A client whose
        # login never ran its setup has no state to clear (discord.py raises AttributeError).
        with contextlib.suppress(AttributeError):
            self.client.clear()
        http = self.client.http
        if getattr(http.connector, "closed", False):
            # Closing the session closed its connector too; the next login makes a new one.
            http.connector = discord.utils.MISSING

    # ------------------------------------------------------------------- commands

    async def run_command(
        self, interaction: InteractionLike, name: str, options: dict[str, Any]
    ) -> None:
        """Answer one `/papers <name>`: within 3 s from the store, or defer and follow up."""
        inv = to_invocation(
            interaction,
            build_text(name, options),
            manage_permission=self.settings.manage_permission,
        )
        reply = await self.service.handle(inv)
        if isinstance(reply, Pending):
            # Ack before Discord's 3 s run out (the user sees "thinking"; the ephemeral choice
            # is fixed now, D-INT-2), then answer within the token's 15 minutes.
            await interaction.response.defer(ephemeral=reply.ephemeral, thinking=True)
            await self._followups(interaction, await reply.reply(), ephemeral=reply.ephemeral)
            return
        messages = render(reply)
        view = self._view_for(reply, messages)
        for n, message in enumerate(messages, 1):
            kwargs = _with(message, ephemeral=reply.ephemeral, view=view, last=n == len(messages))
            if n == 1:
                await interaction.response.send_message(**kwargs)
            else:
                await interaction.followup.send(**kwargs)

    async def _followups(
        self, interaction: InteractionLike, reply: Reply, *, ephemeral: bool
    ) -> None:
        messages = render(reply)
        view = self._view_for(reply, messages)
        for n, message in enumerate(messages, 1):
            kwargs = _with(message, ephemeral=ephemeral, view=view, last=n == len(messages))
            await interaction.followup.send(**kwargs)

    def _view_for(self, reply: Reply, messages: list[dict[str, Any]]) -> discord.ui.View | None:
        if reply.kind is ReplyKind.RESULTS and reply.cards and reply.ephemeral:
            return ResultsView(self, reply)
        return None

    async def autocomplete_topics(
        self, interaction: InteractionLike, current: str
    ) -> list[app_commands.Choice[str]]:
        channel = channel_ref(interaction.guild_id, interaction.channel_id)
        return topic_choices(await self.service.topics(channel), current)

    async def autocomplete_timezones(
        self, _interaction: InteractionLike, current: str
    ) -> list[app_commands.Choice[str]]:
        return timezone_choices(current)

    # -------------------------------------------------------------------- outbound

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        """Post a reply (a digest) into a channel through REST; returns the message id(s),
        comma-separated when a long digest took several messages."""
        try:
            channel_id = int(channel.channel)
        except ValueError:
            raise DeliveryError(f"{channel.key} is not a Discord channel", gone=True) from None
        target = self.channel_getter(channel_id)
        posted: list[str] = []
        for part, message in enumerate(render(reply)):
            # discord.py sends `enforce_nonce: true` with every nonce (http.py), so the nonce
            # alone makes its retry of a 5xx safe; `send()` has no enforce_nonce argument.
            try:
                sent = await target.send(**message, nonce=make_nonce(idempotency_key, part))
            except Exception as exc:
                raise delivery_error(exc, posted=posted) from exc
            posted.append(str(sent.id))
        return ",".join(posted)

    async def reconcile(
        self,
        channel: ChannelRef,
        idempotency_key: str,
        *,
        posted_at: datetime,
        now: datetime,
        attempts: int,
    ) -> Reconciled:
        """An unknown post is settled by posting it again with the same nonces: inside
        Discord's dedupe window (`enforce_nonce`, "a few minutes") a message that landed comes
        back instead of a new one (wave2.md DN-2). Fetched messages carry no nonce (DN-4), so
        past the window, or after one resend, nothing can be checked safely."""
        if attempts > 1:
            return Reconciled(UNCONFIRMED, note="already resent once with the same nonce")
        if now - posted_at > NONCE_WINDOW:
            return Reconciled(
                UNCONFIRMED,
                note=f"more than {NONCE_WINDOW.seconds // 60} minutes since the post: Discord "
                "no longer dedupes a resend",
            )
        return Reconciled(RESEND, note="resending with the same nonce")

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Kicked or banned from a server: pause its channels' digests (they would only 403)."""
        paused = await self.service.workspace_gone(PLATFORM, str(guild.id), GUILD_REMOVED)
        logger.info("removed from Discord server %s: paused %d channel(s)", guild.id, paused)


def _with(
    message: dict[str, Any], *, ephemeral: bool, view: discord.ui.View | None, last: bool
) -> dict[str, Any]:
    """A rendered message plus the interaction-only arguments (buttons go on the last one)."""
    kwargs = {**message, "ephemeral": ephemeral}
    if view is not None and last:
        kwargs["view"] = view
    return kwargs


class ResultsView(discord.ui.View):
    """Buttons under an ephemeral search answer: share it in the channel, or subscribe."""

    def __init__(self, adapter: DiscordAdapter, reply: Reply) -> None:
        super().__init__(timeout=VIEW_TIMEOUT)
        self.adapter = adapter
        self.reply = reply
        share: discord.ui.Button[ResultsView] = discord.ui.Button(
            label="Share", style=discord.ButtonStyle.primary
        )
        share.callback = self.share  # type: ignore[method-assign,assignment]
        self.add_item(share)
        if reply.query:
            subscribe: discord.ui.Button[ResultsView] = discord.ui.Button(
                label="Subscribe this channel", style=discord.ButtonStyle.secondary
            )
            subscribe.callback = self.subscribe  # type: ignore[method-assign,assignment]
            self.add_item(subscribe)

    async def share(self, interaction: InteractionLike) -> None:
        """Post the same results publicly in the channel."""
        await _answer(interaction, self.reply, ephemeral=False)

    async def subscribe(self, interaction: InteractionLike) -> None:
        """`/papers subscribe <the query>`, with the clicking user's permissions."""
        inv = to_invocation(
            interaction,
            f"subscribe {self.reply.query}",
            manage_permission=self.adapter.settings.manage_permission,
        )
        reply = await self.adapter.service.ask(inv)
        await _answer(interaction, reply, ephemeral=reply.ephemeral)


async def _answer(interaction: InteractionLike, reply: Reply, *, ephemeral: bool) -> None:
    """The first message as the interaction response, the rest as follow-ups."""
    for n, message in enumerate(render(reply), 1):
        kwargs = _with(message, ephemeral=ephemeral, view=None, last=False)
        if n == 1:
            await interaction.response.send_message(**kwargs)
        else:
            await interaction.followup.send(**kwargs)


# ------------------------------------------------------------------------ registration


def _unavailable_runner() -> tuple[CommandRunner, dict[str, Autocompleter]]:
    async def run(_interaction: Any, _name: str, _options: dict[str, Any]) -> None:
        raise RuntimeError("commands built for their payload only")

    async def complete(_interaction: Any, _current: str) -> list[app_commands.Choice[str]]:
        return []

    return run, {"topics": complete, "timezones": complete}


def _payload_tree() -> app_commands.CommandTree[discord.Client]:
    # A client only to hold the tree: no login, no gateway. Its voice-support warnings are
    # noise here, so they are muted while it is built.
    client_log = logging.getLogger("discord.client")
    level = client_log.level
    client_log.setLevel(logging.ERROR)
    try:
        client = discord.Client(intents=discord.Intents(guilds=True))
    finally:
        client_log.setLevel(level)
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    run, autocompleters = _unavailable_runner()
    tree.add_command(build_group(run, autocompleters))
    return tree


def command_payload() -> list[dict[str, Any]]:
    """The exact JSON `paperboy discord sync` uploads (what `CommandTree.sync` sends)."""
    tree = _payload_tree()
    return [command.to_dict(tree) for command in tree.get_commands()]


async def sync_commands(
    settings: DiscordSettings, token: str, guild_id: int | None
) -> list[str]:
    """Upload the commands: to one guild (instant; for testing) or globally. Deliberate, never
    on start: command creates are rate limited (200 per day per guild)."""
    tree = _payload_tree()
    client = tree.client
    try:
        try:
            await client.login(token)
        except discord.LoginFailure as exc:
            raise ConfigError(f"DISCORD_TOKEN was rejected by Discord: {exc}") from None
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
        else:
            synced = await tree.sync()
    finally:
        await client.close()
    return [command.name for command in synced]
