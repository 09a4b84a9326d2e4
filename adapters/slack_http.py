"""Slack's HTTP mode: the aiohttp server in front of bolt.

Every request's signature is checked on the raw bytes before anything is parsed; a malformed
request gets 400 or 401, never a 500; each request is acted on once, across instances
(`ReplayGuard`). A `/papers` slash command then takes a short path: it is answered by the
adapter's command handler directly, and the ack goes back as the HTTP response. Everything
else (buttons, events, `ssl_check`, a command of a workspace without an installation) goes
through bolt's `AsyncApp`, the same listeners as Socket Mode.

The short path exists for speed: bolt's middleware chain cost about as much CPU per request
as a search of a 1M-paper store (see `bench/slack_http.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError

logger = logging.getLogger("adapters.slack")

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
HEALTH_PATH = "/healthz"
PROCESS_HEADER = "X-Paperboy-Process"
MAX_BODY = 1024 * 1024
# Slack's signature is valid for five minutes (S-IN-7): a replay after that is refused by the
# signature check, so a key needs keeping only that long (plus clock skew).
SIGNATURE_WINDOW = 300
REPLAY_WINDOW = timedelta(seconds=SIGNATURE_WINDOW + 60)
INVALID = {"error": "invalid request"}
MALFORMED = {"error": "malformed request"}


# bolt's `ack` and `respond` (keyword arguments: text, blocks, response_type, ...).
Ack = Callable[..., Awaitable[Any]]
Respond = Callable[..., Awaitable[Any]]
# A slash command's form fields, its ack and its response_url: run one `/papers` command.
CommandRunner = Callable[[Mapping[str, Any], Ack, Respond], Coroutine[Any, Any, None]]


# ------------------------------------------------------------------------ pure checks


class Parsed(NamedTuple):
    """A signed body, read once: what makes it unique, and a slash command's form fields."""

    key: str | None
    command: dict[str, str] | None = None


def request_key(body: str, content_type: str) -> Parsed:
    """What makes a signed request unique, for acting on it once: the event's `event_id`
    (Slack's retries repeat it), else the `trigger_id` of a slash command or interaction.
    Raises ValueError for a body that is neither a form nor JSON of the shapes Slack sends."""
    if content_type.startswith("application/json"):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("JSON body is not an object")
        event_id = data.get("event_id")
        return Parsed(f"event:{event_id}" if isinstance(event_id, str) and event_id else None)
    form = parse_qs(body, keep_blank_values=True, strict_parsing=bool(body))
    if "payload" in form:
        payload = json.loads(form["payload"][0])
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise ValueError("interaction payload is not an object with a type")
        trigger = payload.get("trigger_id")
        return Parsed(f"trigger:{trigger}" if isinstance(trigger, str) and trigger else None)
    if "command" in form:
        fields = {name: values[0] for name, values in form.items()}
        for field in ("team_id", "channel_id", "user_id"):
            if not fields.get(field):
                raise ValueError(f"slash command without {field}")
        trigger = fields.get("trigger_id")
        return Parsed(f"trigger:{trigger}" if trigger else None, fields)
    if "ssl_check" in form:
        return Parsed(None)
    raise ValueError("neither a slash command, an interaction nor an event")


def signed(secret: str | None, now: float, raw: bytes, headers: Mapping[str, str]) -> bool:
    """Slack's signature over the raw body (slack_sdk decodes it as UTF-8 first and raises on
    other bytes), with a timestamp that is a number at all and inside the window."""
    if not secret:
        return False
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if not signature.isascii() or len(signature) > 200:
        return False
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW:
        return False
    base = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


# ------------------------------------------------------------------------ acting once

_replay_meta = MetaData()
SEEN_REQUESTS = Table(
    "slack_seen_requests",
    _replay_meta,
    Column("key", String(255), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)


class ReplayGuard:
    """Acts-once bookkeeping in the shared database, so it holds across instances: the first
    instance to insert a request's key acts on it; any other copy finds the key taken. A
    request that WE failed to handle gives its key back (`forget`), so Slack's retry of it is
    acted on, while a copy of a request handled well never is."""

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

    def forget(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(SEEN_REQUESTS).where(SEEN_REQUESTS.c.key == key[:255]))


# ------------------------------------------------------------------------ the server


@dataclass
class HttpSetup:
    """What the server needs from the adapter."""

    app: AsyncApp
    secret: str | None
    now: Callable[[], float]  # the signature clock (seconds since the epoch)
    replays: ReplayGuard
    command: str  # the slash command taking the short path ("/papers")
    run_command: CommandRunner
    events: bool  # serve EVENTS_PATH (HTTP mode)
    oauth: bool  # serve the install pages
    installed: Callable[[str], Awaitable[bool]] | None = None  # OAuth: team -> installed?


class SlackHttpServer:
    def __init__(self, setup: HttpSetup) -> None:
        self.setup = setup
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Serve on host:port (0: any free port); returns the port. `reuse_port`: several
        processes serve the one port (SO_REUSEPORT; the kernel spreads connections)."""
        runner = web.AppRunner(self.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def web_app(self) -> web.Application:
        """Events/commands/actions, the OAuth pages, and an unsigned /healthz."""
        app = web.Application(client_max_size=MAX_BODY)
        app.on_response_prepare.append(_stamp)
        app.router.add_get(HEALTH_PATH, _health)
        if self.setup.events:
            app.router.add_post(EVENTS_PATH, self.events)
        if self.setup.oauth:
            app.router.add_get(INSTALL_PATH, self._install)
            app.router.add_get(REDIRECT_PATH, self._oauth_redirect)
        return app

    async def events(self, request: web.Request) -> web.Response:
        """Every malformed request gets 400 or 401 before any work, never a 500; a request
        seen before (a replay inside the signature window, or Slack's own retry of a request
        we handled) is acknowledged and not acted on again."""
        try:
            raw = await request.read()
        except web.HTTPException as exc:  # e.g. a body over client_max_size: 413
            return web.json_response(INVALID, status=exc.status)
        if not signed(self.setup.secret, self.setup.now(), raw, request.headers):
            return web.json_response(INVALID, status=401)
        try:
            text = raw.decode("utf-8")
            parsed = request_key(text, request.headers.get("Content-Type", ""))
        except ValueError:
            return web.json_response(MALFORMED, status=400)
        key = parsed.key or "sig:" + request.headers.get("X-Slack-Signature", "")
        replays = self.setup.replays
        if not await asyncio.to_thread(replays.first_time, key):
            logger.info("Slack request %s seen before (replay or retry): not acted on", key)
            return web.Response(status=200, text="")
        response = await self._handle(text, request, parsed.command)
        if response.status >= 400:  # our failure: Slack's retry of it must be acted on
            await asyncio.to_thread(replays.forget, key)
        return response

    async def _handle(
        self, text: str, request: web.Request, form: dict[str, str] | None
    ) -> web.Response:
        if form is not None and form.get("command") == self.setup.command:
            installed = self.setup.installed
            if installed is None or await installed(str(form.get("team_id"))):
                return await self._command(form)
        bolt_request = AsyncBoltRequest(
            body=text, query=request.query_string, headers=dict(request.headers)
        )
        try:
            response = await self.setup.app.async_dispatch(bolt_request)
        except Exception:
            logger.exception("a Slack request could not be handled")
            return web.json_response(MALFORMED, status=400)
        if response.status >= 500:
            return web.json_response(MALFORMED, status=400)
        return to_aiohttp(response)

    async def _command(self, form: Mapping[str, Any]) -> web.Response:
        """The short path of a slash command: the handler acks (the HTTP response) and may go
        on answering through the response_url after it."""
        acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def ack(**body: Any) -> None:
            if not acked.done():
                acked.set_result({k: v for k, v in body.items() if v is not None})

        respond = AsyncRespond(response_url=form.get("response_url"))
        task = asyncio.create_task(self.setup.run_command(form, ack, respond))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        either: set[asyncio.Future[Any]] = {acked, task}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not acked.done():
            if not task.cancelled() and task.exception() is not None:
                logger.error("a slash command failed before its ack", exc_info=task.exception())
            return web.json_response(MALFORMED, status=400)
        return web.json_response(acked.result())

    async def _install(self, request: web.Request) -> web.Response:
        flow = self.setup.app.oauth_flow
        assert flow is not None
        bolt_request = AsyncBoltRequest(
            body="", query=request.query_string, headers=dict(request.headers)
        )
        return to_aiohttp(await flow.handle_installation(bolt_request))

    async def _oauth_redirect(self, request: web.Request) -> web.Response:
        flow = self.setup.app.oauth_flow
        assert flow is not None
        bolt_request = AsyncBoltRequest(
            body="", query=request.query_string, headers=dict(request.headers)
        )
        response = await flow.handle_callback(bolt_request)
        if response.status == 200:
            logger.info("Slack app installed in a workspace")
        return to_aiohttp(response)


async def _health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _stamp(_request: web.Request, response: web.StreamResponse) -> None:
    # Which process answered, when `[slack] http_workers` share the port (operators, tests).
    response.headers[PROCESS_HEADER] = str(os.getpid())


def to_aiohttp(response: BoltResponse) -> web.Response:
    """bolt's response as aiohttp's (cookies of the OAuth flow kept secure)."""
    headers = {
        k: v
        for k, v in response.first_headers_without_set_cookie().items()
        if k.lower() != "content-type"
    }
    body = response.body or ""
    content_type = "application/json" if body.startswith("{") else "text/plain"
    if any(
        k.lower() == "content-type" and "html" in v for k, v in response.first_headers().items()
    ):
        content_type = "text/html"
    out = web.Response(
        status=response.status, text=body, headers=headers, content_type=content_type
    )
    for cookie in response.cookies():
        for name, morsel in cookie.items():
            out.set_cookie(
                name,
                morsel.value,
                max_age=morsel.get("max-age") or None,
                path=morsel.get("path") or "/",
                secure=True,
                httponly=True,
            )
    return out
