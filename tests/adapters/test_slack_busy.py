"""No command blocks the event loop: while ten digest previews grind (CPU-bound, holding the
GIL as the real selection does), a search over Slack HTTP is still acked, and so is every
preview (with "Looking that up…", the answer following through the response_url).

Not timed: the previews spin until the test has seen the search's ack. With the preview on the
event loop (as before), that ack can never arrive and the previews give up after a long guard.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from adapters.slack import LOOKING, STOPPING, SlackAdapter
from bot import channel_commands
from bot.messages import ChannelRef, Invocation, Reply, UserRef
from bot.service import MAX_HEAVY_PER_CHANNEL, BotService
from tests.adapters.fake_slack import FakeSlackApi, slack_api
from tests.adapters.test_slack import SECRET, load, service, settings, signed

__all__ = ["service", "slack_api"]

GUARD = 10.0  # seconds a preview spins at most when nobody releases it (the failing case)


GAVE_UP: list[str] = []


@pytest.fixture
async def url(service: BotService, slack_api: FakeSlackApi) -> AsyncIterator[str]:
    slack = SlackAdapter(
        service, settings(slack_api, mode="http", SLACK_SIGNING_SECRET=SECRET, SLACK_APP_TOKEN="")
    )
    await slack.serve_http("127.0.0.1", 0)
    yield f"http://127.0.0.1:{slack.http_port}/slack/events"
    await slack.stop()


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Digest previews burn CPU (pure Python, holding the GIL) until released."""
    gate = threading.Event()
    original = channel_commands._digest_preview

    def grinding_preview(ctx: Any) -> Reply:
        deadline = time.monotonic() + GUARD
        while not gate.is_set():
            sum(range(20_000))
            if time.monotonic() > deadline:
                GAVE_UP.append(ctx.inv.channel.key)
                break
        return original(ctx)

    GAVE_UP.clear()

    monkeypatch.setattr(channel_commands, "_digest_preview", grinding_preview)
    return gate


async def slash(
    http: aiohttp.ClientSession, url: str, fake: FakeSlackApi, text: str, channel: str
) -> dict[str, Any]:
    form = load("slash_command.json", RESPONSE_URL=fake.response_url(f"{channel}-{text}"))
    form.update(text=text, channel_id=channel, trigger_id=uuid.uuid4().hex)
    body = urlencode(form)
    async with http.post(url, data=body, headers=signed(body)) as response:
        assert response.status == 200
        return json.loads(await response.text())


async def test_a_search_is_acked_while_ten_digest_previews_run(
    url: str, slack_api: FakeSlackApi, release: threading.Event
) -> None:
    async with aiohttp.ClientSession() as http:
        previews = [
            asyncio.create_task(slash(http, url, slack_api, "digest", f"C{n:04d}"))
            for n in range(10)
        ]
        search_ack = await slash(http, url, slack_api, "dpo", "C9999")
        # The search answered in its ack, with the previews still grinding.
        assert not release.is_set()
        assert "Direct Preference Optimization" in json.dumps(search_ack)
        acks = await asyncio.gather(*previews)
        assert all(ack["text"] == LOOKING for ack in acks)
        release.set()
        # Every preview's answer then follows through its response_url.
        for n in range(10):
            [answer] = await slack_api.wait_for_response(f"C{n:04d}-digest")
            assert answer["text"] != LOOKING
    assert GAVE_UP == []  # nobody had to wait for the guard: the search came through first


async def test_a_channel_runs_a_bounded_number_of_heavy_commands(
    service: BotService, release: threading.Event
) -> None:
    def digest(channel: str) -> Any:
        return service.ask(
            Invocation("digest", ChannelRef("slack", "T0001", channel), UserRef("slack", "U1"))
        )

    running = [asyncio.create_task(digest("C0001")) for _ in range(MAX_HEAVY_PER_CHANNEL)]
    await asyncio.sleep(0)  # both have started (and are grinding in their threads)
    turned_away = await digest("C0001")
    assert turned_away.is_error
    assert f"already has {MAX_HEAVY_PER_CHANNEL}" in turned_away.title
    other = asyncio.create_task(digest("C0002"))  # another channel is not affected
    await asyncio.sleep(0)
    assert not other.done()
    release.set()
    for reply in await asyncio.gather(*running, other):
        assert not reply.is_error


async def test_previews_still_running_at_shutdown_are_told_to_try_again(
    service: BotService,
    slack_api: FakeSlackApi,
    release: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("adapters.slack.STOP_WAIT", 0.2)
    slack = SlackAdapter(
        service, settings(slack_api, mode="http", SLACK_SIGNING_SECRET=SECRET, SLACK_APP_TOKEN="")
    )
    await slack.serve_http("127.0.0.1", 0)
    url = f"http://127.0.0.1:{slack.http_port}/slack/events"
    try:
        async with aiohttp.ClientSession() as http:
            # Two grind in the heavy pool, the third waits in its queue.
            acks = [await slash(http, url, slack_api, "digest", f"C{n:04d}") for n in range(3)]
        assert all(ack["text"] == LOOKING for ack in acks)
        await slack.stop()
        for n in range(3):
            [answer] = await slack_api.wait_for_response(f"C{n:04d}-digest")
            assert answer["text"] == STOPPING
            assert answer["response_type"] == "ephemeral"
    finally:
        release.set()
        await slack.stop()
