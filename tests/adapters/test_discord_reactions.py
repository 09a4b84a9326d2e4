"""👍/👎 on a Discord digest post, end to end: the digest posted into an autospec'd
`PartialMessageable`, raw reaction events (discord.py's own `RawReactionActionEvent`, built from
gateway data as discord.py builds it, and autospec'd ones) dispatched through the client to the
adapter's listeners (wave2.md DR-1..DR-4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest

from adapters.discord import DiscordAdapter, build_client
from adapters.discord_payload import reaction_of
from bot.config import DiscordSettings, Settings
from bot.messages import ChannelRef, Invocation, UserRef
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from bot.taste_store import Outcome
from tests.adapters.test_discord import fake_channel
from tests.conftest import NOW
from tests.fakes import Clock, Reacting, setup_channel
from tests.test_taste import DAY1, DAY2, DAY2_PAPERS, TOPIC, A, B, C

GUILD, CHANNEL, USER, BOT = 111111111111111111, 222222222222222222, 333333333333333333, 999
KEY = f"discord:{GUILD}:{CHANNEL}"


class Wired(Reacting):
    def __init__(self, service: BotService, adapter: DiscordAdapter, outbox: Outbox) -> None:
        super().__init__(service)
        self.adapter, self.outbox = adapter, outbox
        self.message_id = 0

    async def dispatch(self, name: str, payload: Any, calls: int = 1) -> list[Outcome | None]:
        """Dispatch a gateway event through the client; wait for `calls` reactions to reach
        the core (the client runs listeners as tasks)."""
        start = len(self.outcomes)
        self.adapter.client.dispatch(name, payload)
        return await self.reached(start, calls)

    async def ask(self, text: str) -> Any:
        channel = ChannelRef.parse(KEY)
        return await self.service.ask(Invocation(text, channel, UserRef("discord", str(USER))))


@pytest.fixture
async def wired(store: PaperStore, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Wired]:
    clock = Clock(DAY1)
    service = BotService(Settings.load(None, {}), store, clock=lambda: clock.now)
    target = fake_channel()
    adapter = DiscordAdapter(service, token=None, channel_getter=lambda _id: target)
    adapter.client.loop = asyncio.get_running_loop()  # what login's setup does; no gateway here
    me = create_autospec(discord.ClientUser, instance=True)
    me.id = BOT
    monkeypatch.setattr(discord.Client, "user", property(lambda _self: me))
    outbox = Outbox({"discord": adapter})
    setup_channel(store, KEY, [TOPIC], NOW)
    store.upsert_many([A], NOW + timedelta(hours=1))
    assert (await service.deliver_due(outbox, DAY1)).messages == 1
    store.upsert_many(DAY2_PAPERS, DAY1 + timedelta(hours=1))
    clock.now = DAY2
    wired = Wired(service, adapter, outbox)
    wired.message_id = 900  # the fake channel's first message id
    wired.target = target  # type: ignore[attr-defined]
    yield wired
    await adapter.stop()


def raw(
    message_id: int,
    emoji: str = "👍",
    *,
    user: int = USER,
    kind: str = "REACTION_ADD",
    author: int | None = BOT,
    custom_id: int | None = None,
) -> discord.RawReactionActionEvent:
    """A raw reaction event as discord.py makes it from the gateway's data (DR-1)."""
    data: dict[str, Any] = {
        "message_id": str(message_id),
        "channel_id": str(CHANNEL),
        "guild_id": str(GUILD),
        "user_id": str(user),
        "type": 0,
        "burst": False,
    }
    if author is not None and kind == "REACTION_ADD":
        data["message_author_id"] = str(author)
    partial = discord.PartialEmoji(name=emoji, id=custom_id)
    return discord.RawReactionActionEvent(data, partial, kind)  # type: ignore[arg-type]


def test_reactions_intent_on_and_privileged_ones_off() -> None:
    intents = build_client(DiscordSettings()).intents
    assert intents.reactions and intents.guild_reactions  # DR-2
    assert not intents.members and not intents.message_content and not intents.presences


async def test_a_thumbs_up_moves_a_similar_paper_up_in_the_next_digest(wired: Wired) -> None:
    assert await wired.dispatch("raw_reaction_add", raw(wired.message_id, "👍🏾")) == [
        Outcome.RECORDED
    ]
    await wired.service.deliver_due(wired.outbox, DAY2)
    sent = wired.target.send.call_args_list  # type: ignore[attr-defined]
    assert len(sent) == 2
    embeds = sent[1].kwargs["embeds"]
    titles = [e.title for e in embeds]
    index = {pid: next(i for i, t in enumerate(titles) if p.title[:30] in t) for pid, p in _day2()}
    assert index[B] < index[C]  # by upvotes alone it is C, then B
    assert "like 1 paper 👍'd here" in (embeds[index[B]].description or "")


async def test_a_thumbs_down_moves_a_similar_paper_down(wired: Wired) -> None:
    before = [c.id for c in (await wired.ask("digest")).cards]
    assert before.index("2606.00030") < before.index(C)
    await wired.dispatch("raw_reaction_add", raw(wired.message_id, "👎"))
    after = [c.id for c in (await wired.ask("digest")).cards]
    assert after.index(C) < after.index("2606.00030")


async def test_own_and_foreign_reactions_are_dropped_and_removal_undoes(wired: Wired) -> None:
    mid = wired.message_id
    assert reaction_of(raw(mid, user=BOT), BOT, added=True) is None  # DR-4
    assert reaction_of(raw(mid, author=USER), BOT, added=True) is None  # not our message
    assert reaction_of(raw(mid, custom_id=42), BOT, added=True).emoji == ""  # type: ignore[union-attr]
    await wired.dispatch("raw_reaction_add", raw(mid, user=BOT), calls=0)
    assert await wired.dispatch("raw_reaction_add", raw(mid, "👍")) == [Outcome.RECORDED]
    assert await wired.dispatch("raw_reaction_add", raw(mid, "👍")) == [Outcome.DUPLICATE]
    assert wired.outcomes == [Outcome.RECORDED, Outcome.DUPLICATE]  # the bot's own never came
    assert "1 👍 and 0 👎 from 1 person" in (await wired.ask("taste")).text
    removed = raw(mid, "👍", kind="REACTION_REMOVE")
    assert await wired.dispatch("raw_reaction_remove", removed) == [Outcome.RECORDED]
    assert (await wired.ask("taste")).title == "Nothing learned yet in this channel."
    # A message that is not a digest post, in a DM, or on another message: not ours.
    assert await wired.dispatch("raw_reaction_add", raw(12345)) == [Outcome.NOT_OURS]


async def test_hostile_raw_events_never_raise(wired: Wired) -> None:
    blank = create_autospec(discord.RawReactionActionEvent, instance=True)  # no fields set
    odd = create_autospec(discord.RawReactionActionEvent, instance=True)
    odd.message_id, odd.user_id, odd.guild_id, odd.channel_id = wired.message_id, USER, None, None
    odd.message_author_id, odd.emoji = None, create_autospec(discord.PartialEmoji, instance=True)
    odd.emoji.id, odd.emoji.name = None, "👍" * 5_000
    assert reaction_of(blank, BOT, added=True) is None
    await wired.adapter.on_raw_reaction_add(blank)
    await wired.adapter.on_raw_reaction_remove(blank)
    await wired.adapter.on_raw_reaction_add(odd)
    await wired.adapter.on_raw_reaction_add(raw(wired.message_id, "👍" * 5_000))
    assert wired.outcomes == [Outcome.IGNORED, Outcome.IGNORED]
    assert (await wired.ask("taste")).title == "Nothing learned yet in this channel."


def _day2() -> list[tuple[str, Any]]:
    return [(p.id, p) for p in DAY2_PAPERS]
