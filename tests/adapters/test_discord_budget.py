"""The noise-budget commands and `/papers catchup` through the Discord adapter, driven with
autospec'd discord.py objects: typed options in, what the user sees out, and what the store and
the ledger hold afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from adapters.discord import DiscordAdapter
from bot.models import Delivery, DigestRun
from bot.ports import Outbox
from tests.adapters.discord_limits import message_text
from tests.adapters.test_discord import (
    KEY,
    adapter,
    channel,
    interaction,
    invoke,
    next_digest,
    sent,
    service,
)
from tests.fakes import TestBot

__all__ = ["adapter", "channel", "service"]  # fixtures, imported for pytest


async def ask(adapter: DiscordAdapter, name: str, *, manage: bool = True, **options: Any) -> Any:
    """`/papers <name>` with typed options; the one message the user sees."""
    inter = interaction(manage=manage)
    await invoke(adapter, name, inter, **options)
    messages = sent(inter.response.send_message) + sent(inter.followup.send)
    [message] = messages
    return message


def ledger_rows(adapter: DiscordAdapter) -> tuple[int, int]:
    with Session(adapter.service.store.engine) as session:
        runs = session.execute(select(func.count()).select_from(DigestRun)).scalar_one()
        sent_ = session.execute(select(func.count()).select_from(Delivery)).scalar_one()
    return int(runs), int(sent_)


async def test_subscribe_preview_then_the_budget_from_discord(adapter: DiscordAdapter) -> None:
    message = await ask(adapter, "subscribe", query="dpo")
    assert message["ephemeral"] is False
    text = message_text(message)
    assert "Subscribed this channel to dpo" in text and "Over the last four weeks: about" in text

    # Someone without Manage Channels can read the budget but not change it.
    refused = await ask(adapter, "digest", manage=False, action="max", value="5")
    assert refused["ephemeral"] is True
    assert "Only people who can manage this channel" in message_text(refused)

    budget: list[tuple[dict[str, Any], str]] = [
        ({"action": "max", "value": "5"}, "at most 5 papers a digest"),
        ({"action": "min-upvotes", "value": "3"}, "3+ Hugging Face upvotes"),
        ({"action": "quiet on"}, "Quiet mode on."),
    ]
    for options, answer in budget:
        assert answer in message_text(await ask(adapter, "digest", **options)), options
    channel = adapter.service.store.channel(KEY)
    assert channel is not None
    assert (channel.max_papers, channel.min_upvotes, channel.quiet) == (5, 3, True)

    listing = message_text(await ask(adapter, "list", manage=False))
    assert "dpo · about" in listing and "Budget: at most 5 papers a digest" in listing
    assert "3+ Hugging Face upvotes" in listing and "Quiet on" in listing

    bad = await ask(adapter, "digest", action="min-upvotes", value="lots")
    assert bad["ephemeral"] is True
    assert adapter.service.store.channel(KEY).min_upvotes == 3  # type: ignore[union-attr]


async def test_catchup_is_private_needs_no_permission_and_leaves_the_ledger_alone(
    adapter: DiscordAdapter, channel: Any, bot: TestBot
) -> None:
    await ask(adapter, "subscribe", query="dpo")
    service = adapter.service
    slot = next_digest(service)
    await service.deliver_due(Outbox({"discord": adapter}), slot)
    [post] = sent(channel.send)
    assert "Direct Preference Optimization" in message_text(post)
    before = ledger_rows(adapter)

    bot.now = slot + timedelta(days=1)
    message = await ask(adapter, "catchup", manage=False, period="2w")
    assert message["ephemeral"] is True
    text = message_text(message)
    assert "Catch-up" in text and "in the last 2 weeks" in text
    assert "Direct Preference Optimization" in text  # posted already: still caught up on
    assert ledger_rows(adapter) == before
    assert channel.send.await_count == 1  # nothing went to the channel

    default = message_text(await ask(adapter, "catchup", manage=False))
    assert "in the last week" in default


async def test_catchup_answers_bad_periods_and_empty_channels_in_one_line(
    adapter: DiscordAdapter,
) -> None:
    empty = await ask(adapter, "catchup", manage=False)
    assert empty["ephemeral"] is True
    assert "/papers subscribe dpo" in message_text(empty)
    await ask(adapter, "subscribe", query="dpo")
    for bad in ("3m", "31d", "a fortnight"):
        message = await ask(adapter, "catchup", period=bad)
        assert message["ephemeral"] is True, bad
        assert "is not a period I can catch up on" in message_text(message), bad
