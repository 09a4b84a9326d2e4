"""Slack's listeners: the `/papers` slash command, its buttons and the events paperboy hears
(reactions, uninstalls), each translated for the core and its answer rendered back. Part of
`adapters.slack.SlackAdapter` (mixed in); the adapter owns the app, the transport and posting.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack_http import Ack, Respond
from adapters.slack_oauth import InstallationStore
from adapters.slack_payload import (
    PLATFORM,
    action_invocation,
    action_value,
    reaction_event,
    response_type,
    shared_copy,
    to_invocation,
)
from adapters.slack_render import (
    ACTION_ABSTRACT,
    ACTION_LIKE,
    ACTION_SHARE,
    ACTION_SUBSCRIBE,
    render,
)
from bot.messages import UNREADABLE_BUTTON, UNREADABLE_CLICK, Invocation, Pending, Reply, error
from bot.ports import paper_id
from bot.service import BotService

logger = logging.getLogger("adapters.slack")

LOOKING = "Looking that up…"
RESPONSE_URL_USES = 5  # Slack allows five uses of a response_url (S-IN-4)


class SlackListeners:
    """Commands, buttons and events in (mixed into `SlackAdapter`)."""

    app: AsyncApp
    service: BotService
    command: str
    installation_store: InstallationStore | None
    _running: dict[asyncio.Task[Any], Respond]

    def _register(self) -> None:
        self.app.command(self.command)(self._on_command)
        self.app.action(ACTION_SHARE)(self._on_share)
        self.app.action(ACTION_SUBSCRIBE)(self._on_subscribe)
        self.app.action(re.compile(rf"^{ACTION_ABSTRACT}(_\d+)?$"))(self._on_abstract)
        self.app.action(re.compile(rf"^{ACTION_LIKE}(_\d+)?$"))(self._on_like)
        self.app.event("app_uninstalled")(self._on_app_uninstalled)
        self.app.event("tokens_revoked")(self._on_tokens_revoked)
        self.app.event("reaction_added")(self._on_reaction)
        self.app.event("reaction_removed")(self._on_reaction)

    async def _on_command(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        await self._on_command_form(body, ack, respond)

    async def _on_command_form(self, body: Mapping[str, Any], ack: Ack, respond: Respond) -> None:
        """Ack within 3 s every time: with the answer when the store has it, else at once with
        "Looking that up…" and the answer later through the response_url."""
        try:
            inv = to_invocation(body)
        except ValueError:
            logger.warning("a slash command without team, channel or user")
            await _ack_reply(ack, error("Sorry, I could not read that command."))
            return
        task = asyncio.current_task()
        if task is not None:
            self._running[task] = respond
        try:
            await self._answer(inv, ack, respond)
        finally:
            if task is not None:
                self._running.pop(task, None)

    async def _answer(self, inv: Invocation, ack: Ack, respond: Respond) -> None:
        reply = await self.service.handle(inv)
        if isinstance(reply, Pending):
            await ack(text=LOOKING, response_type="ephemeral")
            await self._respond(respond, await reply.reply(), source_text=inv.text)
            return
        try:
            messages = render(reply, source_text=inv.text)
        except Exception:  # a rendering bug must still answer within 3 s
            logger.exception("could not render the answer to %r", inv.text)
            await _ack_reply(ack, error("Sorry, something went wrong on my side."))
            return
        first, rest = messages[0], messages[1:]
        await ack(text=first["text"], blocks=first["blocks"], response_type=response_type(reply))
        for message in rest[: RESPONSE_URL_USES - 1]:
            await respond(
                text=message["text"],
                blocks=message["blocks"],
                response_type=response_type(reply),
                replace_original=False,
            )

    async def _respond(
        self,
        respond: Respond,
        reply: Reply,
        *,
        source_text: str | None,
        actions: bool = True,
        kind: str | None = None,
    ) -> None:
        messages = render(reply, source_text=source_text, actions=actions)
        for message in messages[:RESPONSE_URL_USES]:
            await respond(
                text=message["text"],
                blocks=message["blocks"],
                response_type=kind or response_type(reply),
                replace_original=False,
            )

    async def _clicked(
        self, body: dict[str, Any], respond: Respond, text: str, unreadable: Reply
    ) -> Invocation | None:
        """A click as the `/papers` text it stands for; None, after showing whoever clicked
        `unreadable`, when `text` is "" (a value that is not what the button carries) or the
        payload has no team, channel or user."""
        try:
            if text:
                return action_invocation(body, text)
            logger.warning("a button whose value is not what the button carries")
        except ValueError:
            logger.warning("a button payload without team, channel or user")
        await self._respond(respond, unreadable, source_text=None, kind="ephemeral")
        return None

    async def _on_share(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        """ "Share": the same `/papers` text again, posted for the whole channel."""
        await ack()
        inv = await self._clicked(body, respond, action_value(body), UNREADABLE_CLICK)
        if inv is not None:
            shared = shared_copy(await self.service.ask(inv), inv.user.name)
            await self._respond(respond, shared, source_text=None, actions=False, kind="in_channel")

    async def _on_subscribe(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        """ "Subscribe this channel": `/papers subscribe <query>` through the core."""
        await ack()
        value = action_value(body)
        text = f"subscribe {value}" if value else ""
        inv = await self._clicked(body, respond, text, UNREADABLE_CLICK)
        if inv is not None:
            await self._respond(respond, await self.service.ask(inv), source_text=None)

    async def _on_abstract(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        """ "Abstract": the paper in detail, shown only to whoever clicked. The value must be
        one arXiv id (it becomes the command text): anything else is refused."""
        await ack()
        key = paper_id(action_value(body))
        inv = await self._clicked(body, respond, key or "", UNREADABLE_BUTTON)
        if inv is not None:
            reply = await self.service.ask(inv)
            await self._respond(respond, reply, source_text=None, kind="ephemeral")

    async def _on_reaction(self, body: dict[str, Any], context: Any) -> None:
        """A reaction added or removed anywhere the bot can see: handed to the core, which
        keeps 👍/👎 on its own posts. Bolt acks first and drops the bot's own reactions
        (wave2.md SR-4, SR-5); whatever the payload holds, nothing here raises."""
        bot_user = getattr(context, "bot_user_id", None)
        event = reaction_event(body, bot_user if isinstance(bot_user, str) else None)
        if event is not None:
            await self.service.react(event)

    async def _on_like(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        """ "More like this": `/papers like <the card's paper>`, shown only to whoever clicked.
        The button's value must be exactly one arXiv id; anything else is refused."""
        await ack()
        key = paper_id(action_value(body))
        inv = await self._clicked(body, respond, f"like {key}" if key else "", UNREADABLE_BUTTON)
        if inv is not None:
            reply = await self.service.ask(inv)
            await self._respond(respond, reply, source_text=inv.text, kind="ephemeral")

    async def _on_app_uninstalled(self, context: Any) -> None:
        await self._workspace_gone(context, "the Slack app was uninstalled from this workspace")

    async def _on_tokens_revoked(self, event: dict[str, Any], context: Any) -> None:
        tokens = event.get("tokens") or {}
        if tokens.get("bot"):
            await self._workspace_gone(context, "the Slack bot token was revoked")
        elif self.installation_store is not None:
            for user_id in tokens.get("oauth") or []:
                await self.installation_store.async_delete_installation(
                    enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
                )

    async def _workspace_gone(self, context: Any, reason: str) -> None:
        team = context.team_id
        # Pause first: from here on the digest tick skips the workspace's channels.
        if team:
            paused = await self.service.workspace_gone(PLATFORM, team, reason)
            logger.warning("Slack workspace %s: %s; paused %d channel(s)", team, reason, paused)
        if self.installation_store is not None:
            await self.installation_store.async_delete_all(
                enterprise_id=context.enterprise_id, team_id=team
            )


async def _ack_reply(ack: Ack, reply: Reply) -> None:
    message = render(reply)[0]
    await ack(text=message["text"], blocks=message["blocks"], response_type="ephemeral")
