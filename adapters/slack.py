"""Slack: the `/papers` slash command, its buttons, and digest posts (slack-bolt AsyncApp).
The listeners are in `adapters.slack_listen` (mixed in); this module builds the app, runs the
transport and posts.

Three translations and the transport, nothing else:
- a slash-command payload -> `Invocation` (`adapters.slack_payload`, pure) ->
  `BotService.handle`;
- `Reply` -> Block Kit (`adapters.slack_render.render`, pure);
- `(ChannelRef, Reply)` -> `chat.postMessage` (`adapters.slack_post`), outcomes mapped to
  `DeliveryError` for the delivery ledger.

Transport is configuration: Socket Mode (`SLACK_APP_TOKEN`, the default, no public URL) or HTTP
mode (`[slack] mode = "http"`, `SLACK_SIGNING_SECRET`), served by `adapters.slack_http`, which
checks Slack's signature on the raw body before anything else. Both feed the same listeners.
With `SLACK_CLIENT_ID`/`SLACK_CLIENT_SECRET` the app is multi-workspace: the OAuth install flow
stores installations in paperboy's own database (`adapters.slack_oauth`), and an uninstall
pauses the workspace's channels.

Channel keys are `slack:<team_id>:<channel_id>`, so one workspace can never read or change
another's subscriptions, even for equal channel ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from adapters.slack_http import (
    INSTALL_PATH,
    REDIRECT_PATH,
    HttpSetup,
    ReplayGuard,
    Respond,
    SlackHttpServer,
)
from adapters.slack_listen import LOOKING, SlackListeners
from adapters.slack_oauth import InstallationStore, open_oauth_stores
from adapters.slack_payload import (
    PLATFORM,
)
from adapters.slack_post import Monotonic, SlackPoster, Sleep
from bot.config import Settings, reveal
from bot.messages import ChannelRef, Reply
from bot.ports import (
    ConfigError,
    DeliveryError,
    Reconciled,
    keep_secret,
    one_line_when_unreachable,
)
from bot.service import BotService

__all__ = ["LOOKING", "SCOPES", "STOPPING", "SlackAdapter"]

logger = logging.getLogger(__name__)

# chat:write.public lets digests reach public channels the bot was never invited to (slash
# commands work there, so people subscribe there); private channels need `/invite @paperboy`.
# *:history: reading a channel's recent messages to settle a digest post whose outcome was
# unknown (did the message with our metadata land?).
# reactions:read: 👍/👎 on digest posts teach the channel's ranking (wave2.md SR-2).
# im:write opens a direct message with a user (personal watches, wave2.md SD-1); im:history
# settles a DM whose outcome was unknown, the same way. DMs also need the app's Messages tab
# (slack-manifest.yml `app_home`, SD-3).
SCOPES = [
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "reactions:read",
    "im:write",
    "im:history",
]
# At shutdown, commands still running get this long to answer; the rest are told to retry.
STOP_WAIT = 1.5
STOPPING = "paperboy is restarting and could not finish this. Please try again in a minute."

_SOCKET_LOG = logging.getLogger("adapters.slack.socket")
one_line_when_unreachable(_SOCKET_LOG, "Slack")


# ------------------------------------------------------------------------ the adapter


class SlackAdapter(SlackListeners):
    """The Slack platform: inbound commands and buttons, outbound digest posts."""

    platform = PLATFORM

    def __init__(
        self,
        service: BotService,
        settings: Settings,
        *,
        engine: Engine | None = None,
        sleep: Sleep = asyncio.sleep,
        monotonic: Monotonic = time.monotonic,
        signature_clock: Any = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.secrets = s = settings.secrets
        self.command = settings.slack.command
        self._socket: Any = None
        self._running: dict[asyncio.Task[Any], Respond] = {}
        bot_token, signing_secret = reveal(s.slack_bot_token), reveal(s.slack_signing_secret)
        client_secret = reveal(s.slack_client_secret)
        keep_secret(bot_token, signing_secret, client_secret, reveal(s.slack_app_token))
        self.oauth = bool(s.slack_client_id and client_secret)
        if not self.oauth and not bot_token:
            raise ConfigError("Slack needs SLACK_BOT_TOKEN, or SLACK_CLIENT_ID and SECRET")
        if settings.slack.mode == "http" and not signing_secret:
            raise ConfigError('SLACK_SIGNING_SECRET is missing: [slack] mode = "http" needs it')
        db = engine if engine is not None else service.engine
        self.installation_store: InstallationStore | None = None
        self.app = self._make_app(db, bot_token, signing_secret)
        self.poster = SlackPoster(
            settings.slack.api_base_url, self._bot_token, sleep=sleep, monotonic=monotonic
        )
        self.http = SlackHttpServer(
            HttpSetup(
                app=self.app,
                secret=signing_secret,
                now=(signature_clock.now if signature_clock else time.time),
                replays=ReplayGuard(db),
                command=self.command,
                run_command=self._on_command_form,
                events=settings.slack.mode == "http",
                oauth=self.oauth,
                installed=self._installed if self.oauth else None,
            )
        )
        self._register()

    def _make_app(self, db: Engine, bot_token: str | None, signing_secret: str | None) -> AsyncApp:
        s, api = self.secrets, self.settings.slack.api_base_url
        common: dict[str, Any] = {
            "signing_secret": signing_secret or "",
            # Socket Mode requests carry no signature; HTTP requests are verified twice: by
            # our server before parsing anything, and by bolt.
            "request_verification_enabled": bool(signing_secret),
            "logger": logging.getLogger("adapters.slack.bolt"),
        }
        if not self.oauth:
            return AsyncApp(client=AsyncWebClient(token=bot_token, base_url=api), **common)
        assert s.slack_client_id
        stores = open_oauth_stores(db, s.slack_client_id)
        self.installation_store = stores.installations
        return AsyncApp(
            client=AsyncWebClient(base_url=api),
            oauth_settings=AsyncOAuthSettings(
                client_id=s.slack_client_id,
                client_secret=reveal(s.slack_client_secret),
                scopes=SCOPES,
                installation_store=stores.installations,
                state_store=stores.states,
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                installation_store_bot_only=True,
            ),
            **common,
        )

    @property
    def http_port(self) -> int | None:
        return self.http.port

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect: HTTP mode serves `[slack] host:port` (shared by `http_workers` processes);
        Socket Mode opens the WebSocket (and, with OAuth, also serves the install pages)."""
        slack = self.settings.slack
        if slack.mode == "http" or self.oauth:
            reuse = slack.mode == "http" and slack.http_workers > 1
            port = await self.serve_http(slack.host, slack.port, reuse_port=reuse)
            logger.info("Slack HTTP endpoint on %s:%d", slack.host, port)
        if slack.mode == "socket":
            await self._connect_socket()

    async def _connect_socket(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        app_token = reveal(self.secrets.slack_app_token)
        if not app_token:
            raise ConfigError("SLACK_APP_TOKEN is missing: Socket Mode needs it")
        # Ask for the WebSocket URL ourselves first: the SDK retries a failed connect forever
        # with a traceback each time, while this raises once (no network, a rejected token),
        # so the runtime can back off with one clear line.
        api = self.settings.slack.api_base_url
        web_client = AsyncWebClient(base_url=api)
        try:
            opened = await web_client.apps_connections_open(app_token=app_token)
        except SlackApiError as exc:
            if exc.response.status_code == 429 or exc.response.status_code >= 500:
                raise
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            code = data.get("error") or f"HTTP {exc.response.status_code}"
            raise ConfigError(f"SLACK_APP_TOKEN was rejected by Slack: {code}") from None
        finally:
            if web_client.session is not None and not web_client.session.closed:
                await web_client.session.close()
        self._socket = AsyncSocketModeHandler(
            self.app, app_token, logger=_SOCKET_LOG, web_client=AsyncWebClient(base_url=api)
        )
        self._socket.client.wss_uri = opened["url"]
        await self._socket.connect_async()
        logger.info("Slack Socket Mode connected")

    async def open_for_posting(self) -> None:
        """Ready to post without the inbound side (`paperboy digest --channel`): posts only
        need the Web API client, made on the first post; no port, no Socket Mode."""

    async def serve_http(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Serve the HTTP endpoints on host:port (0: any free port); returns the port."""
        return await self.http.start(host, port, reuse_port=reuse_port)

    async def stop(self) -> None:
        if self._socket is not None:
            socket, self._socket = self._socket, None
            await socket.close_async()
        await self.http.stop()
        await self._finish_running()
        await self.poster.close()

    async def _finish_running(self) -> None:
        """Commands still running (a digest preview in the queue) get `STOP_WAIT` to answer;
        whoever is still waiting after that is told to try again, not left hanging. Both
        steps together stay within the runtime's stop budget for an adapter."""
        if not self._running:
            return
        _, late = await asyncio.wait(list(self._running), timeout=STOP_WAIT)
        told = []
        for task in late:
            respond = self._running.pop(task, None)
            task.cancel()
            if respond is not None:
                told.append(
                    respond(text=STOPPING, response_type="ephemeral", replace_original=False)
                )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*told, return_exceptions=True), STOP_WAIT)

    # ------------------------------------------------------------------ posting

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        """Post `reply` to a channel (`SlackPoster.send`); raises only `DeliveryError`."""
        return await self.poster.send(channel, reply, idempotency_key=idempotency_key)

    async def reconcile(
        self,
        channel: ChannelRef,
        idempotency_key: str,
        *,
        posted_at: datetime,
        now: datetime,
        attempts: int,
        thread_of: str | None = None,
    ) -> Reconciled:
        """Did the post (or the reply in the thread of `thread_of`) carrying
        `idempotency_key` land? (`SlackPoster.reconcile`)"""
        del now, attempts  # Slack's history check needs neither
        return await self.poster.reconcile(
            channel, idempotency_key, posted_at=posted_at, thread_of=thread_of
        )

    async def _installed(self, team_id: str) -> bool:
        store = self.installation_store
        return (
            store is None
            or await store.async_find_bot(enterprise_id=None, team_id=team_id) is not None
        )

    async def _bot_token(self, team_id: str) -> str:
        if self.installation_store is None:
            token = reveal(self.secrets.slack_bot_token)
            assert token
            return token
        bot = await self.installation_store.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            raise DeliveryError(
                f"paperboy is not installed in Slack workspace {team_id}", gone=True
            )
        return str(bot.bot_token)
