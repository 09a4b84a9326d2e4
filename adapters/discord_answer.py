"""Discord: answering an interaction. An interaction -> `Invocation` (`to_invocation`), a
`Reply` -> the interaction's response and follow-ups with each message's buttons
(`send_reply`), and the buttons under an ephemeral result list (`ResultsView`: Share,
Subscribe, and "More like this" under its cards). `adapters.discord` holds the client.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import discord

from adapters.discord_buttons import Numbered, add_plain_likes
from adapters.discord_payload import DM_WORKSPACE, PLATFORM, channel_ref
from adapters.discord_render import render
from bot.config import DiscordSettings
from bot.messages import Invocation, Reply, UserRef

# An interaction token lasts 15 minutes (D-INT-2); buttons on an answer stop a little earlier.
VIEW_TIMEOUT = 14 * 60
ViewsFor = Callable[[list[dict[str, Any]]], list[discord.ui.View | None]]


class InteractionLike(Protocol):
    """The parts of `discord.Interaction` this adapter reads (tests pass a namespace)."""

    guild_id: int | None
    channel_id: int | None
    user: discord.abc.User
    permissions: discord.Permissions
    response: discord.InteractionResponse[Any]
    followup: discord.Webhook


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
        user_home=DM_WORKSPACE,  # one user's watches are the same in every server
    )


class AnswerHost(Protocol):
    """What the buttons of an answer ask of the adapter (`adapters.discord.DiscordAdapter`)."""

    settings: DiscordSettings

    def respond(self, interaction: InteractionLike, inv: Invocation) -> Awaitable[None]: ...

    def more_like(self, interaction: Any, key: str | None) -> Awaitable[None]: ...

    def views_for(
        self, reply: Reply, messages: Sequence[dict[str, Any]], *, interactive: bool = True
    ) -> list[discord.ui.View | None]: ...


def _with(
    message: dict[str, Any], *, ephemeral: bool, view: discord.ui.View | None
) -> dict[str, Any]:
    """A rendered message plus the interaction-only arguments."""
    kwargs = {**message, "ephemeral": ephemeral}
    if view is not None:
        kwargs["view"] = view
    return kwargs


class ResultsView(discord.ui.View):
    """Buttons under an ephemeral search answer: share it in the channel, or subscribe (first
    row), and "More like this" under the message's cards (`group`, the rows below)."""

    def __init__(self, adapter: AnswerHost, reply: Reply, group: Sequence[Numbered] = ()) -> None:
        super().__init__(timeout=VIEW_TIMEOUT)
        self.adapter = adapter
        self.reply = reply
        share: discord.ui.Button[ResultsView] = discord.ui.Button(
            label="Share", style=discord.ButtonStyle.primary, row=0
        )
        share.callback = self.share  # type: ignore[method-assign,assignment]
        self.add_item(share)
        if reply.query:
            subscribe: discord.ui.Button[ResultsView] = discord.ui.Button(
                label="Subscribe this channel", style=discord.ButtonStyle.secondary, row=0
            )
            subscribe.callback = self.subscribe  # type: ignore[method-assign,assignment]
            self.add_item(subscribe)
        add_plain_likes(self, reply, group, adapter.more_like, first_row=1)

    async def share(self, interaction: InteractionLike) -> None:
        """Post the same results publicly in the channel (with their "More like this")."""
        views = functools.partial(self.adapter.views_for, self.reply, interactive=False)
        await send_reply(interaction, self.reply, ephemeral=False, views=views)

    async def subscribe(self, interaction: InteractionLike) -> None:
        """`/papers subscribe <the query>`, with the clicking user's permissions."""
        inv = to_invocation(
            interaction,
            f"subscribe {self.reply.query}",
            manage_permission=self.adapter.settings.manage_permission,
        )
        await self.adapter.respond(interaction, inv)


async def send_reply(
    interaction: InteractionLike,
    reply: Reply,
    *,
    ephemeral: bool,
    views: ViewsFor | None = None,
    deferred: bool = False,
) -> None:
    """Every message of a reply: the first as the interaction's response (after a deferral, a
    follow-up), the rest as follow-ups; each with its buttons (`views`)."""
    messages = render(reply)
    shown = views(messages) if views is not None else [None] * len(messages)
    for n, (message, view) in enumerate(zip(messages, shown, strict=True), 1):
        kwargs = _with(message, ephemeral=ephemeral, view=view)
        if n == 1 and not deferred:
            await interaction.response.send_message(**kwargs)
        else:
            await interaction.followup.send(**kwargs)
