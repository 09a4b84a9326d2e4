"""Slack: the `/papers` slash command, its buttons, and digest posts (slack-bolt AsyncApp).

Three translations and the transport, nothing else:
- a slash-command payload -> `Invocation` (`to_invocation`, pure) -> `BotService.handle`;
- `Reply` -> Block Kit (`adapters.slack_render.render`, pure);
- `(ChannelRef, Reply)` -> `chat.postMessage` (`SlackAdapter.send`), outcomes mapped to
  `DeliveryError` for the delivery ledger.

Transport is configuration: Socket Mode (`SLACK_APP_TOKEN`, the default, no public URL) or HTTP
mode (`[slack] mode = "http"`, `SLACK_SIGNING_SECRET`), where an aiohttp server checks Slack's
signature on the raw body before anything else. Both feed the same `AsyncApp`, so the listeners
are the same. With `SLACK_CLIENT_ID`/`SLACK_CLIENT_SECRET` the app is multi-workspace: the OAuth
install flow stores installations in paperboy's own database, and an uninstall pauses the
workspace's channels.

Channel keys are `slack:<team_id>:<channel_id>`, so one workspace can never read or change
another's subscriptions, even for equal channel ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError

from adapters.slack_render import (
    ACTION_ABSTRACT,
    ACTION_SHARE,
    ACTION_SUBSCRIBE,
    Message,
    render,
)
from bot.config import Settings, reveal
from bot.messages import ChannelRef, Invocation, Pending, Reply, UserRef, error
from bot.ports import (
    ABSENT,
    FOUND,
    LATER,
    UNCONFIRMED,
    ConfigError,
    DeliveryError,
    Reconciled,
    keep_secret,
    one_line_when_unreachable,
)
from bot.service import BotService

logger = logging.getLogger(__name__)

PLATFORM = "slack"
LOOKING = "Looking that up…"
# chat:write.public lets digests reach public channels the bot was never invited to (slash
# commands work there, so people subscribe there); private channels need `/invite @paperboy`.
# *:history: reading a channel's recent messages to settle a digest post whose outcome was
# unknown (did the message with our metadata land?).
SCOPES = ["commands", "chat:write", "chat:write.public", "channels:history", "groups:history"]
EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
HEALTH_PATH = "/healthz"
# Slack: about one message per second per channel (S-OUT-1).
POST_INTERVAL = 1.0
POST_TIMEOUT = 15
# Errors that mean the bot cannot post to that channel any more: stop, pause, tell people.
GONE_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
        "not_authed",
        "team_access_not_granted",
        "missing_scope",
    }
)
# A continuation message hit by a 429 waits and tries again (a clear rejection is safe to
# resend), at most this often and this long.
CONTINUATION_RETRIES = 2
# conversations.history for non-Marketplace apps: 1 request per minute, at most 15 messages
# (wave2.md SH-2). One check per workspace per interval; the rest wait for a later tick.
HISTORY_INTERVAL = 60.0
HISTORY_LIMIT = 15
HISTORY_SLACK = 120  # seconds before the claim the post may carry (clocks differ)
DIGEST_EVENT = "paperboy_digest"
MAX_INLINE_WAIT = 30.0
RESPONSE_URL_USES = 5  # Slack allows five uses of a response_url (S-IN-4)

_SOCKET_LOG = logging.getLogger("adapters.slack.socket")
one_line_when_unreachable(_SOCKET_LOG, "Slack")

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]


# ------------------------------------------------------------------------ pure translation


def to_invocation(body: Mapping[str, Any]) -> Invocation:
    """A slash-command payload (form fields as a mapping) as an `Invocation`.

    The workspace is the `team_id` (an Enterprise Grid org install still sends the workspace's
    team id here), so channel keys never mix workspaces.
    """
    team = body.get("team_id") or body.get("enterprise_id")
    channel = body.get("channel_id")
    user = body.get("user_id")
    if not team or not channel or not user:
        raise ValueError("slash command payload without team_id, channel_id or user_id")
    return Invocation(
        text=str(body.get("text") or ""),
        channel=ChannelRef(PLATFORM, str(team), str(channel)),
        user=UserRef(PLATFORM, str(user), body.get("user_name")),
    )


def action_invocation(body: Mapping[str, Any], text: str) -> Invocation:
    """A button click (block_actions payload) as the `/papers` text it stands for."""
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    user = body.get("user") or {}
    if not team or not channel or not user.get("id"):
        raise ValueError("block action payload without team, channel or user")
    return Invocation(
        text=text,
        channel=ChannelRef(PLATFORM, str(team), str(channel)),
        user=UserRef(PLATFORM, str(user["id"]), user.get("username") or user.get("name")),
    )


def response_type(reply: Reply) -> str:
    # Search results, help and errors are for the asker; confirmations of channel changes
    # (subscribe, schedule) are for the channel (S-IN-5).
    return "ephemeral" if reply.ephemeral else "in_channel"


def delivery_error(exc: BaseException) -> DeliveryError:
    """The ledger's view of a failed `chat.postMessage` (platforms.md S-OUT-1/2/7, R-3)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        code = str(data.get("error") or f"HTTP {status}")
        if status == 429:
            retry_after = _retry_after(exc.response.headers)
            return DeliveryError(f"rate limited ({code})", retry_after=retry_after)
        if status >= 500:
            return DeliveryError(f"Slack answered {status}: may have posted", ambiguous=True)
        if code in GONE_ERRORS:
            return DeliveryError(f"cannot post to this channel: {code}", gone=True)
        return DeliveryError(f"Slack refused the post: {code}")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        # No connection was made, so nothing was written: a plain retry is safe.
        return DeliveryError(f"could not reach Slack: {exc}")
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return DeliveryError(
            f"connection to Slack failed after sending ({type(exc).__name__}): may have posted",
            ambiguous=True,
        )
    return DeliveryError(f"unexpected failure posting to Slack: {exc!r}", ambiguous=True)


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    raw = None
    if headers:
        for key, value in headers.items():
            if key.lower() == "retry-after":
                raw = value[0] if isinstance(value, list) else value
    try:
        return max(float(raw), 1.0) if raw is not None else 1.0
    except ValueError:
        return 1.0


def request_key(body: str, content_type: str) -> str | None:
    """What makes a signed request unique, for acting on it once: the event's `event_id`
    (Slack's retries repeat it), else the `trigger_id` of a slash command or interaction.
    Raises ValueError for a body that is neither a form nor JSON of the shapes Slack sends."""
    if content_type.startswith("application/json"):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("JSON body is not an object")
        event_id = data.get("event_id")
        return f"event:{event_id}" if isinstance(event_id, str) and event_id else None
    form = parse_qs(body, keep_blank_values=True, strict_parsing=bool(body))
    if "payload" in form:
        payload = json.loads(form["payload"][0])
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise ValueError("interaction payload is not an object with a type")
        trigger = payload.get("trigger_id")
        return f"trigger:{trigger}" if isinstance(trigger, str) and trigger else None
    if "command" in form:
        for field in ("team_id", "channel_id", "user_id"):
            if not form.get(field, [""])[0]:
                raise ValueError(f"slash command without {field}")
        trigger = form.get("trigger_id", [""])[0]
        return f"trigger:{trigger}" if trigger else None
    if "ssl_check" in form:
        return None
    raise ValueError("neither a slash command, an interaction nor an event")


_replay_meta = MetaData()
SEEN_REQUESTS = Table(
    "slack_seen_requests",
    _replay_meta,
    Column("key", String(255), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)
# Slack's signature is valid for five minutes (S-IN-7): a replay after that is refused by the
# signature check, so a key needs keeping only that long (plus clock skew).
SIGNATURE_WINDOW = 300
REPLAY_WINDOW = timedelta(seconds=SIGNATURE_WINDOW + 60)


class ReplayGuard:
    """Acts-once bookkeeping in the shared database, so it holds across instances: the first
    instance to insert a request's key acts on it; any other copy finds the key taken."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))
        self._inserts = 0
        _replay_meta.create_all(engine)

    def first_time(self, key: str) -> bool:
        now = self._clock()
        self._inserts += 1
        if self._inserts % 200 == 1:  # keep the table to the window, cheaply
            old = SEEN_REQUESTS.c.seen_at < now - REPLAY_WINDOW
            with self.engine.begin() as conn:
                conn.execute(delete(SEEN_REQUESTS).where(old))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(SEEN_REQUESTS).values(key=key[:255], seen_at=now))
        except IntegrityError:
            return False
        return True


# ------------------------------------------------------------------------ OAuth storage


class InstallationStore(SQLAlchemyInstallationStore, AsyncInstallationStore):
    """slack_sdk's SQLAlchemy installation store on paperboy's own engine, usable by AsyncApp.

    slack_sdk's async variant needs an async engine (another driver); the sync one runs in a
    worker thread instead, so the event loop never waits on the database.
    """

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await asyncio.to_thread(
            self.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            self.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )


class OAuthStateStore(SQLAlchemyOAuthStateStore, AsyncOAuthStateStore):
    """slack_sdk's SQLAlchemy OAuth state store (single-use, expiring `state`), async."""

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.issue, *args, **kwargs)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.consume, state)


# ------------------------------------------------------------------------ the adapter


class SlackAdapter:
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
        self.secrets = settings.secrets
        self.api_base_url = settings.slack.api_base_url
        self.command = settings.slack.command
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_post: dict[str, float] = {}
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._post_clients: dict[str, AsyncWebClient] = {}
        self._history_at: dict[str, float] = {}  # team -> monotonic time of the last check
        self._runner: web.AppRunner | None = None
        self._socket: Any = None
        self.http_port: int | None = None

        s = self.secrets
        bot_token = reveal(s.slack_bot_token)
        signing_secret = reveal(s.slack_signing_secret)
        client_secret = reveal(s.slack_client_secret)
        keep_secret(bot_token, signing_secret, client_secret, reveal(s.slack_app_token))
        self.oauth = bool(s.slack_client_id and client_secret)
        if not self.oauth and not bot_token:
            raise ConfigError("Slack needs SLACK_BOT_TOKEN, or SLACK_CLIENT_ID and SECRET")
        if settings.slack.mode == "http" and not signing_secret:
            raise ConfigError("SLACK_SIGNING_SECRET is missing: [slack] mode = \"http\" needs it")
        self.verifier = (
            SignatureVerifier(signing_secret, **({"clock": signature_clock}
                                                  if signature_clock else {}))
            if signing_secret
            else None
        )
        self.installation_store: InstallationStore | None = None
        self.state_store: OAuthStateStore | None = None
        db = engine if engine is not None else service.engine
        self.replays = ReplayGuard(db)
        common: dict[str, Any] = {
            "signing_secret": signing_secret or "",
            # Socket Mode requests carry no signature; HTTP requests are verified twice: by
            # our server before parsing anything, and by bolt.
            "request_verification_enabled": bool(signing_secret),
            "logger": logging.getLogger("adapters.slack.bolt"),
        }
        if self.oauth:
            assert s.slack_client_id and client_secret
            self.installation_store = InstallationStore(
                client_id=s.slack_client_id,
                engine=db,
                bots_table_name="slack_bots",
                installations_table_name="slack_installations",
            )
            self.installation_store.create_tables()
            self.state_store = OAuthStateStore(
                expiration_seconds=600, engine=db, table_name="slack_oauth_states"
            )
            self.state_store.create_tables()
            self.app = AsyncApp(
                client=AsyncWebClient(base_url=self.api_base_url),
                oauth_settings=AsyncOAuthSettings(
                    client_id=s.slack_client_id,
                    client_secret=client_secret,
                    scopes=SCOPES,
                    installation_store=self.installation_store,
                    state_store=self.state_store,
                    install_path=INSTALL_PATH,
                    redirect_uri_path=REDIRECT_PATH,
                    installation_store_bot_only=True,
                ),
                **common,
            )
        else:
            self.app = AsyncApp(
                client=AsyncWebClient(token=bot_token, base_url=self.api_base_url),
                **common,
            )
        self._register()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect: HTTP mode serves `[slack] host:port`; Socket Mode opens the WebSocket (and,
        with OAuth, also serves the install pages on `[slack] host:port`)."""
        mode = self.settings.slack.mode
        if mode == "http" or self.oauth:
            port = await self.serve_http(self.settings.slack.host, self.settings.slack.port)
            logger.info("Slack HTTP endpoint on %s:%d", self.settings.slack.host, port)
        if mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            if not self.secrets.slack_app_token:
                raise ConfigError("SLACK_APP_TOKEN is missing: Socket Mode needs it")
            # Ask for the WebSocket URL ourselves first: the SDK retries a failed connect
            # forever with a traceback each time, while this raises once (no network, a
            # rejected token), so the runtime can back off with one clear line.
            web_client = AsyncWebClient(base_url=self.api_base_url)
            try:
                opened = await web_client.apps_connections_open(
                    app_token=reveal(self.secrets.slack_app_token) or ""
                )
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
                self.app,
                reveal(self.secrets.slack_app_token),
                logger=_SOCKET_LOG,
                web_client=AsyncWebClient(base_url=self.api_base_url),
            )
            self._socket.client.wss_uri = opened["url"]
            await self._socket.connect_async()
            logger.info("Slack Socket Mode connected")

    async def open_for_posting(self) -> None:
        """Ready to post without the inbound side (`paperboy digest --channel`): posts only
        need the Web API client, made on the first post; no port, no Socket Mode."""

    async def stop(self) -> None:
        if self._socket is not None:
            socket, self._socket = self._socket, None
            await socket.close_async()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        clients, self._post_clients = self._post_clients, {}
        for client in clients.values():
            if client.session is not None and not client.session.closed:
                await client.session.close()

    async def serve_http(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Serve the HTTP endpoints on host:port (0: any free port); returns the port.

        `reuse_port`: several processes serve the one port (SO_REUSEPORT; the kernel spreads
        connections over them), one per core: the core's work is Python and holds the GIL."""
        runner = web.AppRunner(self.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else port
        return self.http_port

    def web_app(self) -> web.Application:
        """The aiohttp application of HTTP mode: events/commands/actions, and OAuth pages."""
        app = web.Application(client_max_size=1024 * 1024)
        # For load balancers: unsigned, says nothing but "up".
        app.router.add_get(HEALTH_PATH, _health)
        if self.settings.slack.mode == "http":
            app.router.add_post(EVENTS_PATH, self._http_events)
        if self.oauth:
            app.router.add_get(INSTALL_PATH, self._http_install)
            app.router.add_get(REDIRECT_PATH, self._http_oauth_redirect)
        return app

    async def _http_events(self, request: web.Request) -> web.Response:
        """Every malformed request gets 400 or 401 before any work, never a 500; a request
        seen before (a replay inside the signature window, or Slack's own retry) is
        acknowledged and not acted on again."""
        try:
            raw = await request.read()
        except web.HTTPException as exc:  # e.g. a body over client_max_size: 413
            return web.json_response({"error": "invalid request"}, status=exc.status)
        # The signature is checked on the raw bytes before anything is parsed (S-IN-7).
        if not self._signed(raw, request.headers):
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            text = raw.decode("utf-8")
            key = request_key(text, request.headers.get("Content-Type", ""))
        except ValueError:
            return web.json_response({"error": "malformed request"}, status=400)
        key = key or "sig:" + request.headers.get("X-Slack-Signature", "")
        if not await asyncio.to_thread(self.replays.first_time, key):
            logger.info("Slack request %s seen before (replay or retry): not acted on", key)
            return web.Response(status=200, text="")
        bolt_request = AsyncBoltRequest(
            body=text, query=request.query_string, headers=dict(request.headers)
        )
        try:
            response = await self.app.async_dispatch(bolt_request)
        except Exception:
            logger.exception("Slack request %s could not be handled", key)
            return web.json_response({"error": "malformed request"}, status=400)
        if response.status >= 500:
            return web.json_response({"error": "malformed request"}, status=400)
        return _to_aiohttp(response)

    def _signed(self, raw: bytes, headers: Mapping[str, str]) -> bool:
        """Slack's signature over the raw body, with a timestamp that is a number at all
        (slack_sdk raises on `X-Slack-Request-Timestamp: abc`)."""
        if self.verifier is None:
            return False
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return False
        if not signature.isascii() or len(signature) > 200:
            return False
        if abs(self.verifier.clock.now() - int(timestamp)) > SIGNATURE_WINDOW:
            return False
        # Over the raw bytes (slack_sdk decodes them as UTF-8 first and raises on others).
        secret = (reveal(self.secrets.slack_signing_secret) or "").encode()
        base = b"v0:" + timestamp.encode() + b":" + raw
        expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    async def _http_install(self, request: web.Request) -> web.Response:
        flow = self.app.oauth_flow
        assert flow is not None
        bolt_request = AsyncBoltRequest(
            body="", query=request.query_string, headers=dict(request.headers)
        )
        return _to_aiohttp(await flow.handle_installation(bolt_request))

    async def _http_oauth_redirect(self, request: web.Request) -> web.Response:
        flow = self.app.oauth_flow
        assert flow is not None
        bolt_request = AsyncBoltRequest(
            body="", query=request.query_string, headers=dict(request.headers)
        )
        response = await flow.handle_callback(bolt_request)
        if response.status == 200:
            logger.info("Slack app installed in a workspace")
        return _to_aiohttp(response)

    # ------------------------------------------------------------------ listeners

    def _register(self) -> None:
        self.app.command(self.command)(self._on_command)
        self.app.action(ACTION_SHARE)(self._on_share)
        self.app.action(ACTION_SUBSCRIBE)(self._on_subscribe)
        self.app.action(re.compile(rf"^{ACTION_ABSTRACT}(_\d+)?$"))(self._on_abstract)
        self.app.event("app_uninstalled")(self._on_app_uninstalled)
        self.app.event("tokens_revoked")(self._on_tokens_revoked)

    async def _on_command(
        self, ack: Any, body: dict[str, Any], respond: Any
    ) -> None:
        """Ack within 3 s every time: with the answer when the store has it, else at once with
        "Looking that up…" and the answer later through the response_url."""
        try:
            inv = to_invocation(body)
        except Exception:
            logger.exception("could not read a slash command")
            await _ack_reply(ack, error("Sorry, I could not read that command."))
            return
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
        await ack(
            text=first["text"], blocks=first["blocks"], response_type=response_type(reply)
        )
        for message in rest[: RESPONSE_URL_USES - 1]:
            await respond(
                text=message["text"],
                blocks=message["blocks"],
                response_type=response_type(reply),
                replace_original=False,
            )

    async def _respond(
        self, respond: Any, reply: Reply, *, source_text: str | None, actions: bool = True,
        kind: str | None = None,
    ) -> None:
        for message in render(reply, source_text=source_text, actions=actions)[
            :RESPONSE_URL_USES
        ]:
            await respond(
                text=message["text"],
                blocks=message["blocks"],
                response_type=kind or response_type(reply),
                replace_original=False,
            )

    async def _on_share(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        """"Share": the same `/papers` text again, posted for the whole channel."""
        await ack()
        text = _action_value(body)
        inv = action_invocation(body, text)
        reply = await self.service.ask(inv)
        shared = Reply(
            kind=reply.kind,
            title=reply.title,
            text=reply.text,
            cards=reply.cards,
            more=reply.more,
            # The name is shown escaped like any user text, so it cannot become a mention.
            footer=" · ".join(p for p in (reply.footer, f"shared by {inv.user.name}") if p)
            if inv.user.name
            else reply.footer,
            ephemeral=False,
            query=reply.query,
        )
        await self._respond(respond, shared, source_text=None, actions=False, kind="in_channel")

    async def _on_subscribe(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        """"Subscribe this channel": `/papers subscribe <query>` through the core."""
        await ack()
        inv = action_invocation(body, f"subscribe {_action_value(body)}")
        await self._respond(respond, await self.service.ask(inv), source_text=None)

    async def _on_abstract(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        """"Abstract": the paper in detail, shown only to whoever clicked."""
        await ack()
        inv = action_invocation(body, _action_value(body))
        reply = await self.service.ask(inv)
        await self._respond(respond, reply, source_text=None, kind="ephemeral")

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

    # ------------------------------------------------------------------ posting

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        """Post `reply` to a channel; returns "channel:ts" of the first message.

        Raises only `DeliveryError`. The post is never retried here when its outcome is
        unknown (the client has no retry handlers): the ledger decides (platforms.md R-3).
        Continuation messages go into the thread of the first.
        """
        try:
            token = await self._bot_token(channel.workspace)
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(f"could not look up the Slack installation: {exc}") from exc
        client = self._post_client(token)
        messages = render(reply, actions=False)
        metadata = {
            "event_type": DIGEST_EVENT,
            "event_payload": {"idempotency_key": idempotency_key, "channel": channel.key},
        }
        async with self._channel_lock(channel.key):
            first = await self._post(client, channel, messages[0], metadata=metadata)
            for n, message in enumerate(messages[1:], 2):
                await self._post_continuation(client, channel, message, first, metadata, n)
        return f"{channel.channel}:{first}"

    async def reconcile(
        self,
        channel: ChannelRef,
        idempotency_key: str,
        *,
        posted_at: datetime,
        now: datetime,
        attempts: int,
    ) -> Reconciled:
        """Did the digest post carrying `idempotency_key` in its metadata land? Reads the
        channel's history since shortly before the post (wave2.md SH-1..SH-3)."""
        team = channel.workspace
        last = self._history_at.get(team)
        if last is not None and self._monotonic() - last < HISTORY_INTERVAL:
            return Reconciled(LATER, note="one history check per minute per workspace")
        try:
            client = self._post_client(await self._bot_token(team))
        except DeliveryError as exc:
            return Reconciled(LATER, note=str(exc))
        self._history_at[team] = self._monotonic()
        oldest = posted_at.timestamp() - HISTORY_SLACK
        try:
            response = await client.conversations_history(
                channel=channel.channel,
                oldest=f"{oldest:.6f}",
                inclusive=True,
                include_all_metadata=True,
                limit=HISTORY_LIMIT,
            )
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            code = str(data.get("error", "")) if isinstance(data, dict) else ""
            status = int(getattr(exc.response, "status_code", 0) or 0)
            if status == 429 or status >= 500:
                return Reconciled(LATER, note=f"Slack answered {status}")
            # missing_scope (an install from before the *:history scopes), not_in_channel...
            return Reconciled(UNCONFIRMED, note=f"cannot read the channel's history: {code}")
        except Exception as exc:
            return Reconciled(LATER, note=f"could not reach Slack: {exc!r}")
        messages = response.get("messages") or []
        for message in messages:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if (meta.get("event_type") == DIGEST_EVENT
                    and payload.get("idempotency_key") == idempotency_key):
                return Reconciled(FOUND, ref=f"{channel.channel}:{message['ts']}")
        if response.get("has_more"):
            return Reconciled(
                UNCONFIRMED,
                note=f"not among the newest {len(messages)} messages since the post, and "
                "Slack lets this app read no further back",
            )
        return Reconciled(ABSENT, note=f"{len(messages)} messages since the post, none of ours")

    async def _post_continuation(
        self,
        client: AsyncWebClient,
        channel: ChannelRef,
        message: Message,
        thread_ts: str,
        metadata: dict[str, Any],
        n: int,
    ) -> None:
        for attempt in range(CONTINUATION_RETRIES + 1):
            try:
                await self._post(client, channel, message, metadata=metadata, thread_ts=thread_ts)
                return
            except DeliveryError as exc:
                wait = exc.retry_after
                if wait is not None and wait <= MAX_INLINE_WAIT and attempt < CONTINUATION_RETRIES:
                    await self._sleep(wait)
                    continue
                # The first message is out: resending the whole digest would repeat it, so
                # the outcome is "partly posted", for the reconciler and an operator.
                raise DeliveryError(
                    f"digest partly posted: part {n} failed ({exc})", ambiguous=True
                ) from exc

    async def _post(
        self,
        client: AsyncWebClient,
        channel: ChannelRef,
        message: Message,
        *,
        metadata: dict[str, Any],
        thread_ts: str | None = None,
    ) -> str:
        await self._pace(channel.key)
        try:
            response = await client.chat_postMessage(
                channel=channel.channel,
                text=message["text"],
                blocks=message["blocks"],
                metadata=metadata,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            failure = delivery_error(exc)
            if failure.gone:
                logger.warning("cannot post to %s: %s", channel.key, failure)
            raise failure from exc
        finally:
            self._last_post[channel.key] = self._monotonic()
        ts = response.get("ts")
        if not ts:
            raise DeliveryError("Slack accepted the post without a ts", ambiguous=True)
        return str(ts)

    async def _pace(self, key: str) -> None:
        last = self._last_post.get(key)
        if last is None:
            return
        wait = last + POST_INTERVAL - self._monotonic()
        if wait > 0:
            await self._sleep(wait)

    def _channel_lock(self, key: str) -> asyncio.Lock:
        lock = self._channel_locks.get(key)
        if lock is None:
            lock = self._channel_locks[key] = asyncio.Lock()
        return lock

    def _post_client(self, token: str) -> AsyncWebClient:
        client = self._post_clients.get(token)
        if client is None:
            # No retry handlers: the SDK's default resends after a connection error, which
            # can post a digest twice (S-OUT-2).
            client = AsyncWebClient(
                token=token, base_url=self.api_base_url, timeout=POST_TIMEOUT, retry_handlers=[]
            )
            self._post_clients[token] = client
        return client

    async def _bot_token(self, team_id: str) -> str:
        if self.installation_store is None:
            token = reveal(self.secrets.slack_bot_token)
            assert token
            return token
        bot = await self.installation_store.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            raise DeliveryError(f"paperboy is not installed in Slack workspace {team_id}",
                                gone=True)
        return str(bot.bot_token)


# ------------------------------------------------------------------------ helpers


async def _health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _action_value(body: Mapping[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


async def _ack_reply(ack: Any, reply: Reply) -> None:
    message = render(reply)[0]
    await ack(text=message["text"], blocks=message["blocks"], response_type="ephemeral")


def _to_aiohttp(response: BoltResponse) -> web.Response:
    headers = {k: v for k, v in response.first_headers_without_set_cookie().items()
               if k.lower() != "content-type"}
    body = response.body or ""
    content_type = "application/json" if body.startswith("{") else "text/plain"
    if any(k.lower() == "content-type" and "html" in v for k, v in
           response.first_headers().items()):
        content_type = "text/html"
    out = web.Response(
        status=response.status, text=body, headers=headers, content_type=content_type
    )
    for cookie in response.cookies():
        for name, morsel in cookie.items():
            out.set_cookie(
                name, morsel.value, max_age=morsel.get("max-age") or None,
                path=morsel.get("path") or "/", secure=True, httponly=True,
            )
    return out


def parse_ack(body: str) -> dict[str, Any]:
    """The JSON an ack carried (tests and the benchmark read it)."""
    return json.loads(body) if body else {}
