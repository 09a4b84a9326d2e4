"""Posts whose outcome is unknown are settled with the platform, or shown to the operator.

Slack through the fake Slack Web API (which keeps what each channel shows and answers
`conversations.history` from it); Discord through an autospec'd `PartialMessageable` that
dedupes on the nonce the way Discord does with `enforce_nonce`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest
from sqlalchemy import Engine

from bot.index import open_index
from bot.messages import ChannelRef, Invocation, UserRef
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from tests.adapters.fake_slack import FakeSlackApi, Scripted, slack_api
from tests.adapters.test_discord import discord_outbox
from tests.adapters.test_slack import Sleeps, slack_outbox
from tests.conftest import NOW
from tests.fakes import paper, setup_channel

__all__ = ["slack_api"]

KEY = "slack:T0001:C0001"
SLOT = datetime(2026, 6, 16, 9, 0, tzinfo=NOW.tzinfo)
TICK = SLOT + timedelta(seconds=30)
TITLE = "Direct preference optimization at scale"


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Iterator[PaperStore]:
    """Every test here on SQLite and on the real PostgreSQL: the ledger's reconciliation SQL
    (take, settle, resend, summary) runs on both."""
    index = open_index(tmp_path / "index")
    yield PaperStore(engine, index=index)
    index.close()


def seed(store: PaperStore, key: str) -> None:
    setup_channel(store, key, ["dpo"], NOW)
    store.upsert_many(
        [
            paper(
                "2606.00001",
                TITLE,
                "We scale DPO.",
                upvotes=12,
                published_at=NOW + timedelta(hours=2),
                hf_daily_date=(NOW + timedelta(hours=2)).date(),
            )
        ],
        NOW + timedelta(hours=2),
    )


async def ask(service: BotService, text: str, key: str = KEY) -> str:
    reply = await service.ask(
        Invocation(text, ChannelRef.parse(key), UserRef(key.split(":")[0], "U1"), can_manage=True)
    )
    return f"{reply.title}\n{reply.text}"


@pytest.fixture
async def slack(
    store: PaperStore, slack_api: FakeSlackApi
) -> AsyncIterator[tuple[BotService, Outbox, Sleeps]]:
    async with slack_outbox(store, slack_api) as (service, outbox, sleeps):
        seed(store, KEY)
        yield service, outbox, sleeps


def shown(fake: FakeSlackApi) -> int:
    """How many times the paper shows in the channel."""
    return sum(
        TITLE in str(m.get("text")) or TITLE in str(m)
        for m in fake.channel_messages.get("C0001", [])
    )


async def test_slack_post_that_landed_is_found_in_history_and_marked_sent(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi
) -> None:
    service, outbox, _ = slack
    slack_api.script("chat.postMessage", Scripted(drop=True))  # posted; the answer is lost
    report = await service.deliver_due(outbox, TICK)
    assert report.unknown == 1 and service.ledger.statuses(KEY) == {"2606.00001": "unknown"}
    assert "an unknown outcome" in await ask(service, "status")

    report = await service.deliver_due(outbox, TICK + timedelta(seconds=30))
    assert report.confirmed == 1
    assert service.ledger.statuses(KEY) == {"2606.00001": "sent"}
    (history,) = slack_api.calls_to("conversations.history")
    assert history.body["channel"] == "C0001"
    assert str(history.body["include_all_metadata"]).lower() in ("1", "true")
    assert int(history.body["limit"]) <= 15
    assert float(history.body["oldest"]) <= TICK.timestamp()
    assert len(slack_api.calls_to("chat.postMessage")) == 1 and shown(slack_api) == 1
    assert "unknown outcome" not in await ask(service, "status")


async def test_slack_post_that_never_landed_is_posted_again_once(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi
) -> None:
    service, outbox, _ = slack
    slack_api.script("chat.postMessage", Scripted(drop=True, landed=False))
    await service.deliver_due(outbox, TICK)
    assert shown(slack_api) == 0

    report = await service.deliver_due(outbox, TICK + timedelta(seconds=30))
    assert report.reposted == 1 and report.retried == 1
    assert shown(slack_api) == 1
    assert service.ledger.statuses(KEY) == {"2606.00001": "sent"}
    for later in (timedelta(minutes=5), timedelta(hours=2)):
        await service.deliver_due(outbox, TICK + later)
    assert shown(slack_api) == 1


async def test_slack_history_out_of_reach_leaves_it_to_the_operator(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi
) -> None:
    service, outbox, _ = slack
    slack_api.script("chat.postMessage", Scripted(drop=True, landed=False))
    slack_api.script("conversations.history", Scripted({"ok": False, "error": "missing_scope"}))
    await service.deliver_due(outbox, TICK)
    await service.deliver_due(outbox, TICK + timedelta(seconds=30))
    assert service.ledger.statuses(KEY) == {"2606.00001": "unknown"}
    status = await ask(service, "status")
    assert "1 paper in 1 digest post(s) in 1 channel(s) has an unknown outcome" in status
    assert "In this channel:" in status and "`/papers digest resend`" in status
    assert "an unknown outcome" in await ask(service, "list")
    # Another workspace on the same bot sees nothing of it.
    assert "unknown outcome" not in await ask(service, "status", "slack:T0002:C0009")
    # Not asked again every tick: it waits for the operator.
    await service.deliver_due(outbox, TICK + timedelta(minutes=10))
    assert len(slack_api.calls_to("conversations.history")) == 1

    # The operator looked: the digest is missing.
    answer = await ask(service, "digest resend")
    assert answer.startswith("1 paper whose post had an unknown outcome will be posted again")
    await service.deliver_due(outbox, TICK + timedelta(minutes=11))
    assert shown(slack_api) == 1
    assert service.ledger.statuses(KEY) == {"2606.00001": "sent"}
    assert "unknown outcome" not in await ask(service, "status")


async def test_slack_history_is_read_at_most_once_a_minute_per_workspace(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    service, outbox, sleeps = slack
    other = "slack:T0001:C0002"
    seed(store, other)
    slack_api.script("chat.postMessage", Scripted(drop=True), Scripted(drop=True))
    await service.deliver_due(outbox, TICK)
    assert store.count() == 1 and service.ledger.counts() == {"unknown": 2}
    await service.deliver_due(outbox, TICK + timedelta(seconds=30))
    assert len(slack_api.calls_to("conversations.history")) == 1
    assert service.ledger.counts() == {"unknown": 1, "sent": 1}
    sleeps.now += 61
    await service.deliver_due(outbox, TICK + timedelta(minutes=3))
    assert len(slack_api.calls_to("conversations.history")) == 2
    assert service.ledger.counts() == {"sent": 2}


# ------------------------------------------------------------------ Discord

DKEY = "discord:42:4242"


class NonceChannel:
    """An autospec'd PartialMessageable whose `send` behaves like Discord with enforce_nonce:
    the first send is created but its answer is lost (a timeout); a send with a nonce seen
    before returns that message instead of a new one."""

    def __init__(self) -> None:
        self.mock = create_autospec(discord.PartialMessageable, instance=True)
        self.messages: dict[str, int] = {}  # nonce -> message id
        self.lose_next = True
        self.mock.send.side_effect = self._send

    async def _send(self, *_a: Any, nonce: str, **_kw: Any) -> Any:
        if nonce not in self.messages:
            self.messages[nonce] = 9000 + len(self.messages)
        if self.lose_next:
            self.lose_next = False
            raise TimeoutError("no answer")
        return SimpleNamespace(id=self.messages[nonce])


@pytest.fixture
async def discord_side(store: PaperStore) -> AsyncIterator[tuple[BotService, Outbox, Any]]:
    channel = NonceChannel()
    async with discord_outbox(store, channel.mock) as (service, outbox):
        seed(store, DKEY)
        yield service, outbox, channel


async def test_discord_unknown_post_is_resent_with_its_nonce_and_comes_back_once(
    discord_side: tuple[BotService, Outbox, NonceChannel],
) -> None:
    service, outbox, channel = discord_side
    report = await service.deliver_due(outbox, TICK)
    assert report.unknown == 1 and len(channel.messages) == 1

    await service.deliver_due(outbox, TICK + timedelta(seconds=30))
    assert service.ledger.statuses(DKEY) == {"2606.00001": "sent"}
    assert len(channel.messages) == 1  # the resend came back as the first message
    nonces = [c.kwargs["nonce"] for c in channel.mock.send.call_args_list]
    assert len(nonces) == 2 and nonces[0] == nonces[1]


async def test_discord_unknown_post_past_the_nonce_window_is_left_to_the_operator(
    discord_side: tuple[BotService, Outbox, NonceChannel],
) -> None:
    service, outbox, channel = discord_side
    await service.deliver_due(outbox, TICK)
    await service.deliver_due(outbox, TICK + timedelta(minutes=10))  # the bot was down
    assert service.ledger.statuses(DKEY) == {"2606.00001": "unknown"}
    assert channel.mock.send.call_count == 1
    text = await ask(service, "status", DKEY)
    assert "an unknown outcome" in text and "`/papers digest resend`" in text


async def test_discord_resend_of_a_deleted_message_is_final_and_pauses_nothing(
    discord_side: tuple[BotService, Outbox, NonceChannel],
) -> None:
    service, outbox, channel = discord_side
    await service.deliver_due(outbox, TICK)
    response = SimpleNamespace(status=404, reason="Not Found", headers={})
    channel.mock.send.side_effect = discord.NotFound(
        response, {"code": 10008, "message": "Unknown Message"}
    )
    await service.deliver_due(outbox, TICK + timedelta(seconds=30))
    assert service.ledger.statuses(DKEY) == {"2606.00001": "failed"}
    channel_row = service.store.channel(DKEY)
    assert channel_row is not None and channel_row.paused_reason is None
    for later in (timedelta(minutes=10), timedelta(hours=3)):
        await service.deliver_due(outbox, TICK + later)
    assert channel.mock.send.call_count == 2  # the lost first post and the one resend
