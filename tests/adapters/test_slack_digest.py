"""Digest delivery through the Slack adapter, end to end: a subscription made with `/papers`,
the digest tick (`BotService.deliver_due`), the ledger, and the fake Slack Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from adapters.slack import SlackAdapter
from bot.config import Settings
from bot.messages import ChannelRef
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from tests.adapters.fake_slack import FakeSlackApi, Scripted, assert_valid_blocks, slack_api
from tests.adapters.test_slack import (
    NASTY,
    PAPERS,
    command,
    posting_adapter,
)
from tests.conftest import NOW
from tests.fakes import paper

__all__ = ["slack_api"]

KEY = "slack:T0001:C0001"
# NOW is Monday 12:00 UTC; a first subscribe sets weekday digests at 09:00 UTC.
SLOT = datetime(2026, 6, 16, 9, 0, tzinfo=NOW.tzinfo)
TICK = SLOT + timedelta(seconds=30)


@pytest.fixture
async def wired(
    store: PaperStore, slack_api: FakeSlackApi
) -> AsyncIterator[tuple[BotService, SlackAdapter, Outbox]]:
    store.upsert_many(PAPERS, NOW - timedelta(hours=1))
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    adapter, outbox, _ = posting_adapter(service, slack_api)
    yield service, adapter, outbox
    await adapter.stop()


async def subscribe_and_publish(
    service: BotService, adapter: SlackAdapter, fake: FakeSlackApi
) -> None:
    status, ack = await command(adapter, fake, "subscribe dpo")
    assert status == 200 and ack["response_type"] == "in_channel"
    # A new paper on the topic arrives after the subscription.
    service.store.upsert_many(
        [
            paper(
                "2606.00001",
                f"Direct preference optimization at scale {NASTY}",
                "We scale DPO to very large models.",
                upvotes=12,
                published_at=NOW + timedelta(hours=2),
            )
        ],
        NOW + timedelta(hours=2),
    )


async def test_subscribe_then_one_digest_post_and_nothing_twice(
    wired: tuple[BotService, SlackAdapter, Outbox], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox = wired
    await subscribe_and_publish(service, adapter, slack_api)
    assert slack_api.posts() == []  # the subscribe was answered in the ack

    report = await service.deliver_due(outbox, TICK)
    [post] = slack_api.posts()
    assert_valid_blocks(post)
    assert post["channel"] == "C0001"
    shown = str(post["blocks"])
    assert "Direct preference optimization at scale" in shown
    assert "<!channel>" not in shown
    assert post["metadata"]["event_type"] == "paperboy_digest"
    assert post["metadata"]["event_payload"]["idempotency_key"]
    assert report.messages == 1
    assert service.ledger.statuses(KEY)["2606.00001"] == "sent"

    await service.deliver_due(outbox, TICK + timedelta(minutes=1))
    await service.deliver_due(outbox, TICK + timedelta(hours=1))
    assert len(slack_api.posts()) == 1


async def test_a_429_is_retried_once_by_the_ledger_after_the_wait(
    wired: tuple[BotService, SlackAdapter, Outbox], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox = wired
    await subscribe_and_publish(service, adapter, slack_api)
    slack_api.script(
        "chat.postMessage",
        Scripted({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "20"}),
    )
    await service.deliver_due(outbox, TICK)
    assert len(slack_api.posts()) == 1
    await service.deliver_due(outbox, TICK + timedelta(seconds=5))  # too early: waits
    assert len(slack_api.posts()) == 1
    await service.deliver_due(outbox, TICK + timedelta(seconds=21))
    await service.deliver_due(outbox, TICK + timedelta(minutes=5))
    posts = slack_api.posts()
    assert len(posts) == 2  # the refused one and its one retry
    assert_valid_blocks(posts[1])
    assert "Direct preference optimization at scale" in str(posts[1]["blocks"])
    assert service.ledger.statuses(KEY)["2606.00001"] == "sent"


async def test_a_dropped_connection_is_never_resent_and_is_settled_from_history(
    wired: tuple[BotService, SlackAdapter, Outbox], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox = wired
    await subscribe_and_publish(service, adapter, slack_api)
    slack_api.script("chat.postMessage", Scripted(drop=True))
    await service.deliver_due(outbox, TICK)
    for later in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)):
        await service.deliver_due(outbox, TICK + later)
    calls = slack_api.calls_to("chat.postMessage")
    assert "Direct preference optimization at scale" in str(calls[0].body["blocks"])
    # The next day's digest may post (new slot), but never this paper again.
    assert (
        sum("Direct preference optimization at scale" in str(c.body["blocks"]) for c in calls) == 1
    )
    # Slack had posted it: the channel's history shows the message with our metadata.
    assert service.ledger.statuses(KEY)["2606.00001"] == "sent"


async def test_a_channel_the_bot_was_removed_from_is_paused_and_says_so(
    wired: tuple[BotService, SlackAdapter, Outbox], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox = wired
    await subscribe_and_publish(service, adapter, slack_api)
    slack_api.error("chat.postMessage", "not_in_channel")
    await service.deliver_due(outbox, TICK)
    await service.deliver_due(outbox, TICK + timedelta(days=1))
    assert len(slack_api.posts()) == 1  # no retries into a channel we cannot post to
    channel = service.store.channel(KEY)
    assert channel is not None and channel.paused_reason
    assert "not_in_channel" in channel.paused_reason
    _, status = await command(adapter, slack_api, "status")
    assert "paused" in str(status["blocks"])
    # Another workspace with the same channel id is not affected.
    assert ChannelRef.parse(KEY).workspace == "T0001"
    assert service.store.channel("slack:T0002:C0001") is None
