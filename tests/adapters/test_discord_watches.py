"""Personal watches through the Discord adapter: `/papers watch` interactions, then the daily
direct message through the digest tick, with autospec'd discord.py objects (`Client.fetch_user`,
`User.create_dm`, a `PartialMessageable` for the DM channel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest

from adapters.discord import DiscordAdapter
from bot.errors import DeliveryError
from bot.messages import ChannelRef
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from bot.watches import PAUSED
from tests.adapters.discord_limits import message_text
from tests.adapters.test_discord import (
    USER,
    _http_error,
    digest,
    fake_channel,
    interaction,
    invoke,
    sent,
    service,
)
from tests.conftest import NOW
from tests.fakes import paper

__all__ = ["service"]

MINE = f"discord:dm:@{USER}"  # the same in every server: Discord user ids are global
DM_ID = 444444444444444444
FIRST = datetime(2026, 6, 16, 8, 0, 30, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
async def wired(service: BotService) -> AsyncIterator[tuple[DiscordAdapter, Any, Any]]:
    """The adapter, the DM channel it posts into, and the user it opens the DM with."""
    dm_channel = fake_channel()
    got: list[int] = []

    def getter(channel_id: int) -> Any:
        got.append(channel_id)
        return dm_channel

    adapter = DiscordAdapter(service, token=None, channel_getter=getter)
    adapter.channel_ids = got  # type: ignore[attr-defined]
    user = create_autospec(discord.User, instance=True)
    user.id = USER
    dm = create_autospec(discord.DMChannel, instance=True)
    dm.id = DM_ID
    user.create_dm.return_value = dm
    adapter.client.fetch_user = create_autospec(  # type: ignore[method-assign]
        adapter.client.fetch_user, return_value=user
    )
    yield adapter, dm_channel, user
    await adapter.stop()


def publish(store: PaperStore, pid: str, title: str, at: datetime) -> None:
    store.upsert_many([paper(pid, title, "We scale DPO.", published_at=at, upvotes=4)], at)


async def test_watch_in_a_server_then_one_dm_a_day(wired: tuple[DiscordAdapter, Any, Any]) -> None:
    adapter, dm_channel, user = wired
    inter = interaction(manage=False)  # no Manage Channels needed
    await invoke(adapter, "watch", inter, query="dpo")
    [answer] = sent(inter.response.send_message)
    assert answer["ephemeral"] is True
    assert "Watching dpo for you." in message_text(answer)

    service = adapter.service
    publish(service.store, "2606.00001", "DPO at scale @everyone", NOW + timedelta(hours=2))
    outbox = Outbox({"discord": adapter})
    await service.deliver_due(outbox, FIRST)
    await service.deliver_due(outbox, FIRST + timedelta(minutes=1))
    [message] = sent(dm_channel.send)
    assert "DPO at scale" in message_text(message) and message["nonce"]
    assert adapter.channel_ids == [DM_ID]  # type: ignore[attr-defined]
    adapter.client.fetch_user.assert_awaited_once_with(USER)  # type: ignore[attr-defined]

    publish(service.store, "2606.00002", "DPO for robots", FIRST + timedelta(hours=3))
    await service.deliver_due(outbox, FIRST + DAY)
    messages = sent(dm_channel.send)
    assert len(messages) == 2 and "DPO for robots" in message_text(messages[1])
    assert "DPO at scale" not in message_text(messages[1])
    assert user.create_dm.await_count == 1  # the DM is opened once per process (DD-3)
    assert service.ledger.statuses(MINE) == {"2606.00001": "sent", "2606.00002": "sent"}


async def test_watches_are_the_same_in_a_dm_and_in_every_server(
    wired: tuple[DiscordAdapter, Any, Any],
) -> None:
    adapter, _, _ = wired
    await invoke(adapter, "watch", interaction(guild_id=555), query="author:rafailov")
    in_dm = interaction(guild_id=None)
    await invoke(adapter, "watches", in_dm)
    [listing] = sent(in_dm.response.send_message)
    assert "1. author:rafailov" in message_text(listing) and listing["ephemeral"]
    choices = await adapter.autocomplete_watches(interaction(), "raf")
    assert [c.value for c in choices] == ["author:rafailov"]
    other = interaction(user_id=USER + 1)
    await invoke(adapter, "unwatch", other, watch="1")
    assert "You do not watch 1" in message_text(sent(other.response.send_message)[0])
    assert [s.query for s in adapter.service.store.subscriptions(MINE)] == ["author:rafailov"]


async def test_the_time_and_timezone_options_set_when_the_message_comes(
    wired: tuple[DiscordAdapter, Any, Any],
) -> None:
    adapter, _, _ = wired
    await invoke(adapter, "watch", interaction(guild_id=555), query="dpo")
    inter = interaction(guild_id=None)
    await invoke(adapter, "watches", inter, time="07:30", timezone="Europe/Berlin")
    [answer] = sent(inter.response.send_message)
    assert "daily after 07:30 Europe/Berlin" in message_text(answer) and answer["ephemeral"]
    mine = adapter.service.store.channel(MINE)
    assert mine is not None and (mine.digest_time, mine.timezone) == ("07:30", "Europe/Berlin")


async def test_a_user_who_closed_dms_is_paused_after_one_failure(
    wired: tuple[DiscordAdapter, Any, Any],
) -> None:
    adapter, dm_channel, _ = wired
    await invoke(adapter, "watch", interaction(), query="dpo")
    service = adapter.service
    publish(service.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    dm_channel.send.side_effect = _http_error(discord.Forbidden, 403, 50007)  # DD-2
    outbox = Outbox({"discord": adapter})
    await service.deliver_due(outbox, FIRST)
    for later in (timedelta(minutes=10), DAY, 2 * DAY):
        await service.deliver_due(outbox, FIRST + later)
    assert dm_channel.send.await_count == 1  # never retried
    inter = interaction()
    await invoke(adapter, "watches", inter)
    shown = message_text(sent(inter.response.send_message)[0])
    assert PAUSED in shown and "50007" in shown
    stored = service.store.channel(MINE)
    assert stored is not None and stored.paused_reason is None  # resumed by that command


@pytest.mark.parametrize(
    "error,expected",
    [
        (_http_error(discord.HTTPException, 400, 50007), {"gone": True}),  # create_dm refused
        (_http_error(discord.NotFound, 404, 10013), {"gone": True}),  # unknown user
        (_http_error(discord.HTTPException, 400, 40003), {"retry_after": 600.0}),  # too fast
        (_http_error(discord.DiscordServerError, 503, 0), {}),  # opening posts nothing
    ],
)
async def test_opening_the_dm_fails_clearly(
    wired: tuple[DiscordAdapter, Any, Any], error: BaseException, expected: dict[str, Any]
) -> None:
    adapter, dm_channel, user = wired
    user.create_dm.side_effect = error
    with pytest.raises(DeliveryError) as caught:
        await adapter.send(ChannelRef.parse(MINE), digest(), idempotency_key="k")
    assert caught.value.gone is expected.get("gone", False)
    assert caught.value.retry_after == expected.get("retry_after")
    assert caught.value.ambiguous is False
    assert dm_channel.send.await_count == 0
