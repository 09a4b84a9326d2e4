"""A fake Slack Web API on a loopback port, and the Block Kit limit checker every test uses.

`FakeSlackApi` is an aiohttp server on 127.0.0.1 port 0. It records every call (method, parsed
body, headers) and answers like Slack: `auth.test` and `oauth.v2.access` with canned data keyed
by token / code, everything else `{"ok": true}` (`chat.postMessage` with a fresh `ts`). Tests
script the next answers of a method: an `ok:false` error, an HTTP status (429 with Retry-After,
500), a delay, or a dropped connection after the request was read. `/response/<id>` stands in
for a slash command's `response_url`.

`assert_valid_blocks(message)` checks one rendered message against Slack's documented limits
(platforms.md S-OUT-3/4), independently of the renderer's own constants.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


@dataclass
class Scripted:
    """One scripted answer: JSON body and status, optional delay, or drop the connection."""

    body: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    landed: bool = True  # with drop, for chat.postMessage: the message was posted anyway


class FakeSlackApi:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}  # response_url id -> posts
        self.scripts: dict[str, list[Scripted]] = {}
        self.tokens: dict[str, str] = {"xoxb-test": "T0001"}  # bot token -> team id
        self.base_url = ""
        self.root = ""
        self._ts = itertools.count(1)
        self._server: TestServer | None = None
        # What each channel shows (chat.postMessage that Slack took), oldest first; read back
        # by conversations.history.
        self.channel_messages: dict[str, list[dict[str, Any]]] = {}
        # Socket Mode: the WebSocket `apps.connections.open` hands out, and what came back.
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- control

    def script(self, method: str, *answers: Scripted) -> None:
        self.scripts.setdefault(method, []).extend(answers)

    def error(self, method: str, code: str, status: int = 200) -> None:
        self.script(method, Scripted({"ok": False, "error": code}, status=status))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posts(self) -> list[dict[str, Any]]:
        return [c.body for c in self.calls_to("chat.postMessage")]

    def response_url(self, name: str = "r1") -> str:
        return f"{self.root}/response/{name}"

    async def wait_for_response(
        self, name: str = "r1", count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The posts to one response_url once `count` of them arrived (the answer after an
        ack arrives asynchronously); fails the test if they do not within `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.responses.get(name, [])) < count:
            if asyncio.get_running_loop().time() > deadline:
                got = self.responses.get(name, [])
                raise AssertionError(
                    f"response_url {name!r}: {len(got)} of {count} posts after {timeout} s: {got}"
                )
            await asyncio.sleep(0.01)
        return self.responses.get(name, [])

    # ---------------------------------------------------------------- server

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk reads history with GET
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/link", self._socket)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        self.root = str(self._server.make_url("")).rstrip("/")
        self.base_url = self.root + "/api/"

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _read(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return dict(request.query)
        raw = await request.read()
        if request.content_type == "application/json":
            return json.loads(raw or b"{}")
        # slack_sdk sends some methods' arguments in the query string (conversations.open,
        # chat.delete).
        body: dict[str, Any] = {**dict(request.query), **dict(parse_qsl(raw.decode()))}
        for key in ("blocks", "metadata"):
            if isinstance(body.get(key), str):
                body[key] = json.loads(body[key])
        return body

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        body = await self._read(request)
        call = Call(method, body, dict(request.headers))
        self.calls.append(call)
        queue = self.scripts.get(method)
        if queue:
            answer = queue.pop(0)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            if answer.drop:
                # The request was read in full; the connection dies before any answer.
                if method == "chat.postMessage" and answer.landed:
                    self._keep(call.body)
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        return web.json_response(self._default(method, call))

    def _default(self, method: str, call: Call) -> dict[str, Any]:
        handler = {
            "auth.test": self._auth_test,
            "oauth.v2.access": self._oauth_access,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "conversations.open": self._open_dm,
            "chat.delete": lambda c: self._delete(
                str(c.body.get("channel")), str(c.body.get("ts"))
            ),
            "conversations.replies": lambda c: self._replies(c.body),
            "conversations.history": self._history,
        }.get(method)
        return handler(call) if handler is not None else {"ok": True}

    def _auth_test(self, call: Call) -> dict[str, Any]:
        team = self.tokens.get(call.token or "")
        if team is None:
            return {"ok": False, "error": "invalid_auth"}
        return {
            "ok": True,
            "url": f"https://{team.lower()}.slack.com/",
            "team": f"Team {team}",
            "user": "paperboy",
            "team_id": team,
            "user_id": f"UBOT{team}",
            "bot_id": f"BBOT{team}",
            "is_enterprise_install": False,
        }

    def _oauth_access(self, call: Call) -> dict[str, Any]:
        team = str(call.body.get("code", "")).removeprefix("code-")
        if not team:
            return {"ok": False, "error": "invalid_code"}
        token = f"xoxb-{team}"
        self.tokens[token] = team
        return {
            "ok": True,
            "app_id": "A0PAPERBOY",
            "authed_user": {"id": "UINSTALLER"},
            "scope": "commands,chat:write,chat:write.public",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": f"UBOT{team}",
            "team": {"id": team, "name": f"Team {team}"},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _connections_open(self, call: Call) -> dict[str, Any]:
        if not (call.token or "").startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.root.replace("http://", "ws://") + "/link"}

    def _post_message(self, call: Call) -> dict[str, Any]:
        kept = self._keep(call.body)
        echoed = {"text": call.body.get("text")}
        if "thread_ts" in kept:
            echoed["thread_ts"] = kept["thread_ts"]
        return {
            "ok": True,
            "channel": call.body.get("channel"),
            "ts": kept["ts"],
            "message": echoed,
        }

    def _open_dm(self, call: Call) -> dict[str, Any]:
        # A 1:1 DM with the app (wave2.md SD-1): the same D… id for a user every time.
        users = str(call.body.get("users") or "")
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": "D" + users.removeprefix("U")}}

    def _history(self, call: Call) -> dict[str, Any]:
        # Parents only, newest first, `limit` of them (replies live in threads: ST-4).
        shown = [
            m
            for m in self.channel_messages.get(str(call.body.get("channel")), [])
            if m.get("thread_ts") in (None, m["ts"])
        ]
        limit = int(call.body.get("limit", 100))
        page = list(reversed(shown))[:limit]
        metadata = str(call.body.get("include_all_metadata")).lower() in ("1", "true")
        messages = [{k: v for k, v in m.items() if k != "metadata" or metadata} for m in page]
        return {"ok": True, "messages": messages, "has_more": len(shown) > limit}

    def _keep(self, body: dict[str, Any]) -> dict[str, Any]:
        message = {
            "type": "message",
            "ts": f"1700000000.{next(self._ts):06d}",
            "text": body.get("text"),
            "metadata": body.get("metadata"),
        }
        shown = self.channel_messages.setdefault(str(body.get("channel")), [])
        # Like Slack (wave2.md ST-3): a reply to a parent that no longer exists is posted
        # top-level, silently; only the missing `message.thread_ts` in the answer says so.
        if body.get("thread_ts") and any(m["ts"] == body["thread_ts"] for m in shown):
            message["thread_ts"] = body["thread_ts"]
        shown.append(message)
        return message

    def delete(self, channel: str, ts: str) -> None:
        """Someone deleted a message (a digest post) in the channel."""
        self._delete(channel, ts)

    def _delete(self, channel: str, ts: str) -> dict[str, Any]:
        shown = self.channel_messages.get(channel, [])
        kept = [m for m in shown if m["ts"] != ts]
        if len(kept) == len(shown):
            return {"ok": False, "error": "message_not_found"}
        self.channel_messages[channel] = kept
        return {"ok": True, "channel": channel, "ts": ts}

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The replies in the thread of `ts` (the parent left out), oldest first."""
        return [
            m
            for m in self.channel_messages.get(channel, [])
            if m.get("thread_ts") == ts and m["ts"] != ts
        ]

    def _replies(self, body: dict[str, Any]) -> dict[str, Any]:
        """conversations.replies: the parent then its replies, oldest first (ST-4)."""
        channel, ts = str(body.get("channel")), str(body.get("ts"))
        shown = self.channel_messages.get(channel, [])
        if not any(m["ts"] == ts for m in shown):
            return {"ok": False, "error": "thread_not_found"}
        thread = [m for m in shown if m["ts"] == ts or m.get("thread_ts") == ts]
        limit = int(body.get("limit", 1000))
        metadata = str(body.get("include_all_metadata")).lower() in ("1", "true")
        page = [{k: v for k, v in m.items() if k != "metadata" or metadata} for m in thread]
        return {"ok": True, "messages": page[:limit], "has_more": len(thread) > limit}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0PAPERBOY"}}
        )
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(message.data))
        return ws

    async def socket_send(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Push one envelope down the Socket Mode connection; return the app's ack to it."""
        for _ in range(300):
            if self.sockets:
                break
            await asyncio.sleep(0.01)
        await self.sockets[-1].send_json(envelope)
        for _ in range(300):
            for ack in self.socket_acks:
                if ack.get("envelope_id") == envelope["envelope_id"]:
                    return ack
            await asyncio.sleep(0.01)
        raise AssertionError(f"no ack for envelope {envelope['envelope_id']}")

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        self.responses.setdefault(request.match_info["name"], []).append(body)
        return web.Response(text="ok")


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    fake = FakeSlackApi()
    await fake.start()
    yield fake
    await fake.close()


# ------------------------------------------------------------------------ Block Kit limits

_MENTION_OR_LINK = re.compile(r"<[^>]*>")
_OUR_LINK = re.compile(r"^<https?://[^\s<>|]+\|[^<>]+>$")


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        out: list[str] = []
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                out.extend(_texts(value))
        return out
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def _text_obj(obj: Any, limit: int, where: str, *, plain: bool = False) -> None:
    assert isinstance(obj, dict), f"{where}: text object missing"
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    assert obj.get("type") in kinds, f"{where}: text type {obj.get('type')}"
    text = obj.get("text")
    assert isinstance(text, str) and text, f"{where}: empty text"
    assert len(text) <= limit, f"{where}: {len(text)} > {limit} characters"


def assert_valid_blocks(message: dict[str, Any]) -> None:
    """One Slack message is within every limit we rely on (S-OUT-3, S-OUT-4, S-OUT-5)."""
    text = message.get("text")
    assert isinstance(text, str) and text.strip(), "top-level text must always be present"
    assert len(text) <= 4_000, f"top-level text {len(text)} > 4000"
    blocks = message.get("blocks")
    assert isinstance(blocks, list) and blocks, "blocks missing"
    assert len(blocks) <= 50, f"{len(blocks)} blocks > 50"
    action_ids = [a for i, block in enumerate(blocks) for a in _check_block(i, block)]
    assert len(action_ids) == len(set(action_ids)), f"duplicate action_ids {action_ids}"
    total = sum(len(t) for t in _texts(blocks))
    assert total <= 12_000, f"block text totals {total} > 12000"
    # Escaping: every <...> left in the output is one of our own http(s) links.
    for piece in [text, *_texts(blocks)]:
        for match in _MENTION_OR_LINK.findall(piece):
            assert _OUR_LINK.match(match), f"unescaped control sequence {match!r}"
    # A second opinion from slack_sdk's own models (they know the same limits).
    from slack_sdk.models.blocks import Block

    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()


def _check_block(i: int, block: dict[str, Any]) -> list[str]:
    """One block within its limits; returns the action_ids it carries."""
    where = f"block {i} ({block.get('type')})"
    kind = block.get("type")
    assert kind in ("header", "section", "context", "actions", "divider"), where
    if "block_id" in block:
        assert len(block["block_id"]) <= 255, where
    if kind == "header":
        _text_obj(block.get("text"), 150, where, plain=True)
    elif kind == "section":
        return _check_section(block, where)
    elif kind in ("context", "actions"):
        elements = block.get("elements", [])
        assert 1 <= len(elements) <= (10 if kind == "context" else 25), where
        if kind == "actions":
            return [_button(e, where) for e in elements]
        for e in elements:
            _text_obj(e, 3_000, where)
    return []


def _check_section(block: dict[str, Any], where: str) -> list[str]:
    assert "text" in block or "fields" in block, where
    if "text" in block:
        _text_obj(block["text"], 3_000, where)
    fields = block.get("fields", [])
    assert len(fields) <= 10, where
    for f in fields:
        _text_obj(f, 2_000, where)
    return [_button(block["accessory"], where)] if "accessory" in block else []


def _button(element: dict[str, Any], where: str) -> str:
    assert element.get("type") == "button", where
    _text_obj(element.get("text"), 75, where, plain=True)
    assert 1 <= len(element.get("action_id", "")) <= 255, where
    assert len(element.get("value", "")) <= 2_000, where
    if "url" in element:
        assert len(element["url"]) <= 3_000, where
    return str(element["action_id"])
