"""Discord: `/papers` interactions in, digest posts out; the gateway client and its lifecycle.

Three translations and nothing else: an interaction's typed options -> `Invocation` (through the
core's text grammar, `bot.commands.build_text`); `Reply` -> Discord messages
(`discord_render.render`, pure); `(ChannelRef, Reply)` -> a REST post (`DiscordAdapter.send`).
Raw reaction events go to `BotService.react` (`discord_payload.reaction_of`, pure). The command
group itself is generated in `discord_commands`; answering an interaction (its response,
follow-ups and buttons) is `discord_answer`, the "More like this" buttons `discord_buttons`.

Inside this file `import discord` is the SDK (absolute imports); run the bot with `python -m bot`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.discord_answer import (
    InteractionLike,
    ResultsView,
    send_reply,
    to_invocation,
)
from adapters.discord_buttons import like_button_type, views_for
from adapters.discord_commands import PapersTree, build_group, timezone_choices, topic_choices
from adapters.discord_dm import DirectMessages
from adapters.discord_payload import DM_WORKSPACE, PLATFORM, channel_ref, reaction_of
from adapters.discord_render import render
from adapters.discord_reply import reply_in_thread
from bot.commands import build_text
from bot.config import DiscordSettings
from bot.messages import UNREADABLE_BUTTON, ChannelRef, Invocation, Pending, Reply, ReplyKind
from bot.ports import (
    RESEND,
    UNCONFIRMED,
    ConfigError,
    DeliveryError,
    Reconciled,
    keep_secret,
    one_line_when_unreachable,
    retry_after,
)
from bot.service import BotService

logger = logging.getLogger(__name__)
# discord.py's gateway logs a traceback per reconnect attempt while Discord is unreachable;
# an operator gets one line per attempt instead (the runtime's own retries say the same).
one_line_when_unreachable(logging.getLogger("discord.client"), "Discord")
one_line_when_unreachable(logger, "Discord")


NONCE_MAX = 25
# Discord dedupes a nonce "in the past few minutes" (the exact window is not documented):
# resend an unknown post only well inside it. Ticks are 30 s apart by default.
NONCE_WINDOW = timedelta(minutes=2)
UNKNOWN_MESSAGE = 10008  # Discord's error code
# discord.py sleeps on a 429 before retrying; above this wait it raises `RateLimited` instead,
# so a digest tick is never parked for minutes (the ledger retries after `retry_after`).
MAX_RATELIMIT_WAIT = 30.0
GUILD_REMOVED = "the bot was removed from this Discord server; invite it again to resume"


# ----------------------------------------------------------------------------- inbound


def build_client(settings: DiscordSettings) -> discord.Client:
    """The gateway client: minimal intents (guilds and reactions, no members, no message content);
    `AutoShardedClient` when `[discord] shards` is set."""
    intents = discord.Intents.none()
    intents.guilds = True  # on_guild_remove, and discord.py needs guilds for sane caches
    # 👍/👎 on digest posts teach the ranking: raw reaction events, not a privileged intent
    # (wave2.md DR-1, DR-2); members and message content stay off.
    intents.reactions = True
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
            return DeliveryError(
                "Discord rate limit",
                retry_after=retry_after(getattr(exc.response, "headers", None), default=5.0),
            )
        if exc.status >= 500:
            return DeliveryError(f"Discord {exc.status}: {exc.text}", ambiguous=True)
        # 400 and friends: Discord rejected the message itself; nothing was created.
        return DeliveryError(f"Discord rejected the post ({exc.status} {exc.code}: {exc.text})")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | OSError):
        return DeliveryError(f"no clear answer from Discord ({exc!r})", ambiguous=True)
    # Unknown failure: assume the worst for "never twice" (the reconciler checks the nonce).
    return DeliveryError(f"unexpected error posting to Discord ({exc!r})", ambiguous=True)


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
        self.tree = PapersTree(self.client)
        self.group = build_group(
            self.run_command,
            {
                "topics": self.autocomplete_topics,
                "watches": self.autocomplete_watches,
                "timezones": self.autocomplete_timezones,
            },
        )
        self.tree.add_command(self.group)
        # No guild cache needed: a partial messageable is an id plus the REST client.
        self.channel_getter: ChannelGetter = channel_getter or self.client.get_partial_messageable
        self.client.event(self.on_guild_remove)
        self.client.event(self.on_raw_reaction_add)
        self.client.event(self.on_raw_reaction_remove)
        self.dms = DirectMessages(self.client, self.channel_getter)  # personal watches
        # "More like this" under digest cards answers clicks on any message, old ones too.
        self.like_button = like_button_type(self.more_like)
        self.client.add_dynamic_items(self.like_button)
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
        await self.respond(interaction, inv)

    async def respond(self, interaction: InteractionLike, inv: Invocation) -> None:
        """The service's answer as the interaction's response: at once when it is ready, else
        deferred (Discord allows 3 s) and followed up."""
        reply = await self.service.handle(inv)
        if isinstance(reply, Pending):
            # Ack before Discord's 3 s run out (the user sees "thinking"; the ephemeral choice
            # is fixed now, D-INT-2), then answer within the token's 15 minutes.
            await interaction.response.defer(ephemeral=reply.ephemeral, thinking=True)
            answer = await reply.reply()
            await send_reply(
                interaction,
                answer,
                ephemeral=reply.ephemeral,
                views=functools.partial(self.views_for, answer),
                deferred=True,
            )
            return
        views = functools.partial(self.views_for, reply)
        await send_reply(interaction, reply, ephemeral=reply.ephemeral, views=views)

    def views_for(
        self, reply: Reply, messages: Sequence[dict[str, Any]], *, interactive: bool = True
    ) -> list[discord.ui.View | None]:
        """The buttons of each message: "More like this" under its cards; on the last message
        of an ephemeral result list, Share and Subscribe too (`interactive`)."""
        results = reply.kind is ReplyKind.RESULTS and reply.cards and reply.ephemeral
        with_results = functools.partial(ResultsView, self, reply)
        return views_for(
            self.like_button, reply, messages, with_results if interactive and results else None
        )

    async def more_like(self, interaction: InteractionLike, key: str | None) -> None:
        """A "More like this" click: `/papers like <id>`, answered only to whoever clicked."""
        if key is None:
            logger.warning("a More like this button whose id is not an arXiv id")
            await send_reply(interaction, UNREADABLE_BUTTON, ephemeral=True)
            return
        inv = to_invocation(
            interaction, f"like {key}", manage_permission=self.settings.manage_permission
        )
        await self.respond(interaction, inv)

    async def autocomplete_topics(
        self, interaction: InteractionLike, current: str
    ) -> list[app_commands.Choice[str]]:
        channel = channel_ref(interaction.guild_id, interaction.channel_id)
        return topic_choices(await self.service.topics(channel), current)

    async def autocomplete_watches(
        self, interaction: InteractionLike, current: str
    ) -> list[app_commands.Choice[str]]:
        mine = ChannelRef.direct(PLATFORM, DM_WORKSPACE, str(interaction.user.id))
        return topic_choices(await self.service.topics(mine), current)

    async def autocomplete_timezones(
        self, _interaction: InteractionLike, current: str
    ) -> list[app_commands.Choice[str]]:
        return timezone_choices(current)

    # -------------------------------------------------------------------- outbound

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        """Post a reply (a digest) into a channel, or a user's DM (`discord:dm:@<user id>`),
        through REST; returns the message id(s), comma-separated when a long digest took
        several messages."""
        target = await self.dms.channel(channel.user_id) if channel.is_direct else None
        if target is None:
            try:
                target = self.channel_getter(int(channel.channel))
            except ValueError:
                raise DeliveryError(f"{channel.key} is not a Discord channel", gone=True) from None
            if reply.thread_of is not None:
                return await reply_in_thread(
                    target, int(channel.channel), reply, idempotency_key, make_nonce, delivery_error
                )
        posted: list[str] = []
        messages = render(reply)
        views = self.views_for(reply, messages, interactive=False)
        for part, (message, view) in enumerate(zip(messages, views, strict=True)):
            if view is not None:
                message = {**message, "view": view}
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
        _channel: ChannelRef,
        _idempotency_key: str,
        *,
        posted_at: datetime,
        now: datetime,
        attempts: int,
        thread_of: str | None = None,
    ) -> Reconciled:
        """An unknown post is settled by posting it again with the same nonces: inside
        Discord's dedupe window (`enforce_nonce`, "a few minutes") a message that landed comes
        back instead of a new one (wave2.md DN-2). Fetched messages carry no nonce (DN-4), so
        past the window, or after one resend, nothing can be checked safely. A reply
        (`thread_of`) is checked the same way: its resend carries the same reference."""
        del thread_of
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

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, added=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, added=False)

    async def _reaction(self, payload: discord.RawReactionActionEvent, *, added: bool) -> None:
        """A reaction on any message the bot can see, handed to the core (which keeps 👍/👎 on
        its own digest posts). Never raises whatever the payload holds."""
        me = self.client.user.id if self.client.user is not None else None
        try:
            event = reaction_of(payload, me, added=added)
        except Exception:  # a payload discord.py itself could not make sense of
            logger.warning("a Discord reaction event could not be read", exc_info=True)
            return
        if event is not None:
            await self.service.react(event)
