"""Slack HTTP mode under attack: 400/401 for every malformed request before any work (never a
500), and every signed request acted on once, across instances sharing one database."""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import Engine

from adapters.slack import SlackAdapter
from adapters.slack_http import SEEN_REQUESTS
from bot.config import Settings
from bot.index import PaperIndex
from bot.service import BotService
from bot.store import PaperStore
from tests.adapters.fake_slack import FakeSlackApi, slack_api
from tests.adapters.test_slack import PAPERS, SECRET, load, settings, signed
from tests.conftest import NOW

__all__ = ["slack_api"]

CHANNEL = "slack:T0001:C0001"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
async def instances(
    db: Engine, slack_api: FakeSlackApi, tmp_path: Any
) -> AsyncIterator[tuple[list[str], BotService]]:
    """Two instances of the bot (two HTTP servers) on one database."""
    store = PaperStore(db, PaperIndex(tmp_path / "index"))
    store.upsert_many(PAPERS, NOW)
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    adapters = []
    for _ in range(2):
        adapter = SlackAdapter(
            service,
            settings(slack_api, mode="http", SLACK_SIGNING_SECRET=SECRET, SLACK_APP_TOKEN=""),
        )
        await adapter.serve_http("127.0.0.1", 0)
        adapters.append(adapter)
    yield [f"http://127.0.0.1:{a.http_port}/slack/events" for a in adapters], service
    for adapter in adapters:
        await adapter.stop()
    SEEN_REQUESTS.drop(db, checkfirst=True)
    store.index.close()  # type: ignore[union-attr]


def command(slack_api: FakeSlackApi, text: str, **extra: str) -> str:
    form = load("slash_command.json", RESPONSE_URL=slack_api.response_url())
    form.update(text=text, trigger_id=f"{uuid.uuid4().hex}.trigger", **extra)
    return urlencode(form)


async def post(url: str, body: str | bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


BAD_TIMESTAMPS = ["abc", "", "-1", "1e9", "١٢٣٤٥٦٧٨٩٠", "9" * 40, " 1700000000"]


async def test_bad_timestamps_and_signatures_are_401_not_500(
    instances: tuple[list[str], BotService], slack_api: FakeSlackApi
) -> None:
    [url, _], service = instances
    body = command(slack_api, "subscribe dpo")
    good = signed(body)
    for timestamp in BAD_TIMESTAMPS:
        status, text = await post(url, body, {**good, "X-Slack-Request-Timestamp": timestamp})
        assert status == 401, (timestamp, text)
    for signature in ["", "v0=", "v0=zz", "é" * 10, "x" * 5000]:
        headers = {**good, "X-Slack-Signature": signature}
        status, _ = await post(url, body, headers)
        assert status == 401, signature
    assert service.store.subscriptions(CHANNEL) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("garbage{{", "application/x-www-form-urlencoded"),
        ("payload=not-json", "application/x-www-form-urlencoded"),
        ("payload=%5B%5D", "application/x-www-form-urlencoded"),  # payload=[]
        ('payload={"no":"type"}', "application/x-www-form-urlencoded"),
        ("command=%2Fpapers&text=dpo", "application/x-www-form-urlencoded"),  # no team/user
        ("[]", "application/json"),
        ("{not json", "application/json"),
        (b"\xff\xfe\xfa", "application/x-www-form-urlencoded"),  # not UTF-8
        ("", "application/x-www-form-urlencoded"),
    ],
)
async def test_signed_but_malformed_payloads_are_400_not_500(
    instances: tuple[list[str], BotService], body: str | bytes, content_type: str
) -> None:
    [url, _], _service = instances
    raw = body if isinstance(body, bytes) else body.encode()
    headers = signed(raw.decode("latin-1"))
    # Signed over the exact bytes, as Slack's scheme defines it.
    base = b"v0:" + headers["X-Slack-Request-Timestamp"].encode() + b":" + raw
    headers["X-Slack-Signature"] = "v0=" + hmac.new(SECRET.encode(), base, "sha256").hexdigest()
    headers["Content-Type"] = content_type
    status, text = await post(url, raw, headers)
    assert status == 400, text


async def test_a_replayed_subscribe_does_not_act_again_on_any_instance(
    instances: tuple[list[str], BotService], slack_api: FakeSlackApi
) -> None:
    [first, second], service = instances
    subscribe = command(slack_api, "subscribe dpo")
    captured = signed(subscribe)
    status, _ = await post(first, subscribe, captured)
    assert status == 200
    assert [s.query for s in service.store.subscriptions(CHANNEL)] == ["dpo"]

    unsubscribe = command(slack_api, "unsubscribe dpo")
    status, _ = await post(first, unsubscribe, signed(unsubscribe))
    assert status == 200
    assert service.store.subscriptions(CHANNEL) == []

    # The captured request, replayed inside the 5-minute window, to either instance.
    for url in (first, second):
        status, text = await post(url, subscribe, captured)
        assert status == 200 and text == ""
    assert service.store.subscriptions(CHANNEL) == []


async def test_slack_retries_of_an_event_are_acted_on_once(
    instances: tuple[list[str], BotService], monkeypatch: pytest.MonkeyPatch
) -> None:
    [first, second], service = instances
    paused: list[str] = []

    def pause(prefix: str, _reason: str) -> int:
        paused.append(prefix)
        return 0

    monkeypatch.setattr(service.store, "pause_channels", pause)
    event = json.dumps(load("app_uninstalled.json"))
    for n, url in enumerate((first, second, first)):
        headers = {**signed(event), "Content-Type": "application/json"}
        if n:
            headers.update({"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"})
        status, _ = await post(url, event, headers)
        assert status == 200
    assert paused == ["slack:T0002:"]


async def test_slacks_retry_after_our_failure_is_acted_on_but_a_copy_of_a_success_is_not(
    sqlite_engine: Engine,
    slack_api: FakeSlackApi,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = PaperStore(sqlite_engine, PaperIndex(tmp_path / "index"))
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    adapter = SlackAdapter(
        service, settings(slack_api, mode="http", SLACK_SIGNING_SECRET=SECRET, SLACK_APP_TOKEN="")
    )
    await adapter.serve_http("127.0.0.1", 0)
    url = f"http://127.0.0.1:{adapter.http_port}/slack/events"
    paused: list[str] = []

    def pause(prefix: str, _reason: str) -> int:
        paused.append(prefix)
        return 0

    monkeypatch.setattr(store, "pause_channels", pause)
    dispatch = adapter.app.async_dispatch
    failures = [RuntimeError("database went away")]

    async def flaky(request: Any) -> Any:
        if failures:
            raise failures.pop()
        return await dispatch(request)

    monkeypatch.setattr(adapter.app, "async_dispatch", flaky)
    event = json.dumps(load("app_uninstalled.json"))
    try:
        statuses = []
        for retry in range(3):  # the first attempt fails on our side; Slack retries twice
            headers = {**signed(event), "Content-Type": "application/json"}
            if retry:
                headers.update(
                    {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
                )
            statuses.append((await post(url, event, headers))[0])
        assert statuses == [400, 200, 200]
        assert paused == ["slack:T0002:"]  # acted on at the first retry, not at the second
    finally:
        await adapter.stop()
        SEEN_REQUESTS.drop(sqlite_engine, checkfirst=True)
        store.close()
