"""Personal watches through the Slack adapter, end to end: `/papers watch` as a slash command,
the digest tick, the ledger, and the fake Slack Web API (`conversations.open`, then
`chat.postMessage` into the DM)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack import SlackAdapter
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from bot.watches import PAUSED
from tests.adapters.fake_slack import FakeSlackApi, Scripted, assert_valid_blocks, slack_api
from tests.adapters.test_slack import NASTY, load, shown, wired
from tests.conftest import NOW
from tests.fakes import Clock, paper

__all__ = ["slack_api", "wired"]  # fixtures, imported for pytest

MINE = "slack:T0001:@U0001"
FIRST = datetime(2026, 6, 16, 8, 0, 30, tzinfo=UTC)  # the first tick after 08:00 UTC
DAY = timedelta(days=1)


async def typed(
    adapter: SlackAdapter, fake: FakeSlackApi, text: str, *, user: str = "U0001"
) -> dict[str, Any]:
    """`/papers <text>` typed by `user` in #reading-group; returns the ack."""
    body = load("slash_command.json", RESPONSE_URL=fake.response_url())
    body.update(text=text, user_id=user)
    response = await adapter.app.async_dispatch(AsyncBoltRequest(mode="socket_mode", body=body))
    assert response.status == 200
    ack: dict[str, Any] = json.loads(response.body)
    assert_valid_blocks(ack)
    return ack


def publish(store: PaperStore, pid: str, title: str, at: datetime) -> None:
    store.upsert_many([paper(pid, title, "We scale DPO.", published_at=at, upvotes=4)], at)


def dm_posts(fake: FakeSlackApi) -> list[dict[str, Any]]:
    return [p for p in fake.posts() if str(p["channel"]).startswith("D")]


async def test_watch_then_one_dm_a_day_through_conversations_open(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox, _ = wired
    ack = await typed(adapter, slack_api, "watch dpo")
    assert ack["response_type"] == "ephemeral"
    assert "Watching dpo for you." in shown(ack)
    publish(service.store, "2606.00001", f"DPO at scale {NASTY}", NOW + timedelta(hours=2))

    await service.deliver_due(outbox, FIRST)
    await service.deliver_due(outbox, FIRST + timedelta(minutes=1))  # same day: nothing more
    [opened] = slack_api.calls_to("conversations.open")
    assert opened.body["users"] == "U0001"
    [post] = slack_api.posts()
    assert post["channel"] == "D0001"  # the DM, not the channel the command came from
    assert_valid_blocks(post)
    text = str(post["blocks"])
    assert "DPO at scale" in text and "<!channel>" not in text
    assert "1 new paper on your watches" in post["text"]
    assert post["metadata"]["event_payload"]["channel"] == MINE
    assert service.ledger.statuses(MINE) == {"2606.00001": "sent"}

    publish(service.store, "2606.00002", "DPO for robots", FIRST + timedelta(hours=3))
    await service.deliver_due(outbox, FIRST + DAY)
    posts = dm_posts(slack_api)
    assert len(posts) == 2 and "DPO for robots" in str(posts[1]["blocks"])
    assert "DPO at scale" not in str(posts[1]["blocks"])  # new papers only
    assert len(slack_api.calls_to("conversations.open")) == 1  # the D… id is cached


async def test_a_user_the_app_cannot_message_is_paused_after_one_failure(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox, clock = wired
    await typed(adapter, slack_api, "watch dpo")
    publish(service.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    slack_api.error("chat.postMessage", "cannot_dm_bot")  # the "user" is a bot (SD-2)
    await service.deliver_due(outbox, FIRST)
    publish(service.store, "2606.00002", "DPO for robots", FIRST + timedelta(hours=3))
    for later in (timedelta(minutes=5), timedelta(hours=2), DAY, 2 * DAY):
        await service.deliver_due(outbox, FIRST + later)
    assert len(slack_api.posts()) == 1  # the refused one; never retried
    assert service.ledger.statuses(MINE) == {"2606.00001": "failed"}

    clock.now = FIRST + 2 * DAY + timedelta(hours=1)
    listing = shown(await typed(adapter, slack_api, "watches"))
    assert PAUSED in listing and "cannot message this user" in listing
    await service.deliver_due(outbox, FIRST + 3 * DAY)
    [_, resumed] = slack_api.posts()
    assert resumed["channel"] == "D0001" and "DPO for robots" in str(resumed["blocks"])


@pytest.mark.parametrize(
    ("method", "code"),
    [("chat.postMessage", "messages_tab_disabled"), ("conversations.open", "missing_scope")],
)
async def test_an_app_that_cannot_dm_yet_pauses_nobody(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock],
    slack_api: FakeSlackApi,
    method: str,
    code: str,
) -> None:
    # The Messages tab is off, or the app was upgraded without reinstalling (no im:write):
    # the app's fault, not the users'. The DM waits; once the operator fixes the app, it
    # goes out, and nobody had to run `/papers watches` to be resumed (wave2.md SD-3).
    service, adapter, outbox, _ = wired
    await typed(adapter, slack_api, "watch dpo")
    await typed(adapter, slack_api, "watch dpo", user="U0002")
    publish(service.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    slack_api.error(method, code)
    await service.deliver_due(outbox, FIRST)
    for key in (MINE, "slack:T0001:@U0002"):
        assert (service.store.channel(key) or pytest.fail(key)).paused_reason is None
    await service.deliver_due(outbox, FIRST + timedelta(hours=2))  # the operator fixed it
    delivered = {str(p["channel"]) for p in dm_posts(slack_api)}
    assert delivered == {"D0001", "D0002"}


@pytest.mark.parametrize("code", ["user_not_found", "user_disabled", "cannot_dm_bot"])
async def test_a_dm_that_cannot_be_opened_pauses_that_user_only(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock], slack_api: FakeSlackApi, code: str
) -> None:
    service, adapter, outbox, _ = wired
    await typed(adapter, slack_api, "watch dpo")
    await typed(adapter, slack_api, "watch dpo", user="U0002")
    publish(service.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    slack_api.error("conversations.open", code)  # wave2.md SD-2
    await service.deliver_due(outbox, FIRST)
    await service.deliver_due(outbox, FIRST + DAY)
    paused = {
        key: (service.store.channel(key) or pytest.fail(key)).paused_reason
        for key in (MINE, "slack:T0001:@U0002")
    }
    assert [bool(reason) for reason in paused.values()].count(True) == 1
    assert len(slack_api.calls_to("conversations.open")) == 2  # one each, never again
    assert len(dm_posts(slack_api)) == 1  # the other user got theirs


async def test_an_unknown_dm_is_settled_from_the_dms_history_not_resent(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox, _ = wired
    await typed(adapter, slack_api, "watch dpo")
    publish(service.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    slack_api.script("chat.postMessage", Scripted(drop=True))  # landed, answer lost
    await service.deliver_due(outbox, FIRST)
    assert service.ledger.statuses(MINE) == {"2606.00001": "unknown"}
    await service.deliver_due(outbox, FIRST + timedelta(minutes=2))
    [history] = slack_api.calls_to("conversations.history")
    assert history.body["channel"] == "D0001"
    assert service.ledger.statuses(MINE) == {"2606.00001": "sent"}
    await service.deliver_due(outbox, FIRST + timedelta(hours=1))
    assert len(slack_api.posts()) == 1


def test_the_manifest_turns_the_messages_tab_on_read_only() -> None:
    from pathlib import Path

    manifest = (Path(__file__).resolve().parents[2] / "slack-manifest.yml").read_text()
    lines = [line.split("#")[0].strip() for line in manifest.splitlines()]
    assert "app_home:" in lines
    assert "messages_tab_enabled: true" in lines
    assert "messages_tab_read_only_enabled: true" in lines
    assert "- im:write" in lines
