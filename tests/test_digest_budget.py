"""A channel's noise budget set from chat (`/papers digest max N`, `min-upvotes N`, `quiet
on|off`): what the commands answer, what `/papers list` shows, and what the next digest posts.

The digest ticks run on a real SQLite file and on the real PostgreSQL server (`engine`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from bot.commands import build_text
from bot.config import Settings
from bot.messages import ChannelRef, Invocation, ReplyKind, UserRef
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from tests.fakes import CHAN, FakeAdapter, Post, TestBot, paper

MONDAY = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)
SLOT = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)  # the default schedule: weekdays 09:00 UTC
KEY = "slack:T1:C1"


async def test_each_setting_is_answered_and_shown_in_list(bot: TestBot) -> None:
    await bot.ask("subscribe dpo")
    listed = (await bot.ask("list")).plain_text()
    assert "at most 10 papers a digest" in listed and "any number of upvotes" in listed
    assert "Quiet off:" in listed
    assert "at most 5 papers a digest" in (await bot.ask("digest max 5")).plain_text()
    assert "3+ Hugging Face upvotes" in (await bot.ask("digest min-upvotes 3")).plain_text()
    assert (await bot.ask("digest quiet on")).title == "Quiet mode on."
    listed = (await bot.ask("list")).plain_text()
    assert "at most 5 papers a digest" in listed
    assert "only papers with 3+ Hugging Face upvotes" in listed
    assert "Quiet on: a day with nothing that passes posts nothing" in listed
    preview = await bot.ask("digest")
    assert "Budget: at most 5, 3+ upvotes, quiet." in (preview.footer or "")
    assert "at most 1 paper a digest" in (await bot.ask("DIGEST MAX 1")).plain_text()
    assert "any number of upvotes" in (await bot.ask("digest min-upvotes 0")).plain_text()
    assert (await bot.ask("digest quiet off")).title == "Quiet mode off."
    assert "Quiet off:" in (await bot.ask("list")).plain_text()


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("digest max 0", "`digest max` takes a whole number from 1 to 30; `0` is not one."),
        ("digest max 31", "`digest max` takes a whole number from 1 to 30; `31` is not one."),
        ("digest max abc", "`digest max` takes a whole number from 1 to 30; `abc` is not one."),
        ("digest max -1", "`digest max` takes a whole number from 1 to 30; `-1` is not one."),
        ("digest max 2.5", "`digest max` takes a whole number from 1 to 30; `2.5` is not one."),
        ("digest max ²", "`digest max` takes a whole number from 1 to 30; `²` is not one."),
        ("digest max 5 6", "`digest max` takes a whole number from 1 to 30; `5 6` is not one."),
        ("digest max", "`digest max` takes a whole number from 1 to 30."),
        (
            "digest min-upvotes 1001",
            "`digest min-upvotes` takes a whole number from 0 to 1000; `1001` is not one.",
        ),
        (
            "digest min-upvotes 99999999999999999999",
            "`digest min-upvotes` takes a whole number from 0 to 1000; "
            "`99999999999999999999` is not one.",
        ),
        ("digest quiet maybe", "`digest quiet` takes on or off; `maybe` is neither."),
        ("digest quiet", "`digest quiet` takes on or off."),
    ],
)
async def test_bad_values_get_one_line_and_change_nothing(
    bot: TestBot, text: str, answer: str
) -> None:
    await bot.ask("subscribe dpo")
    reply = await bot.ask(text)
    assert reply.kind is ReplyKind.ERROR
    assert reply.title == answer
    channel = bot.store.channel(CHAN.key)
    assert (channel.max_papers, channel.min_upvotes, channel.quiet) == (10, 0, False)


@pytest.mark.parametrize("text", ["digest max 5", "digest min-upvotes 3", "digest quiet on"])
async def test_only_channel_managers_change_the_budget(bot: TestBot, text: str) -> None:
    await bot.ask("subscribe dpo")
    reply = await bot.ask(text, can_manage=False)
    assert reply.kind is ReplyKind.ERROR
    assert reply.title == "Only people who can manage this channel may change its digest budget."
    channel = bot.store.channel(CHAN.key)
    assert (channel.max_papers, channel.min_upvotes, channel.quiet) == (10, 0, False)
    assert "at most 10 papers" in (await bot.ask("list", can_manage=False)).plain_text()


async def test_digest_post_keeps_to_max_and_min_upvotes(bot: TestBot) -> None:
    await bot.ask("subscribe dpo")  # two papers: 120 and 5 upvotes
    await bot.ask("digest min-upvotes 10")
    assert (await bot.ask("digest post")).title == "Posted this channel's digest (1 paper)."
    [post] = bot.outbox.sent
    assert post.paper_ids == ["2305.18290"] and post.reply.more == 0
    assert "more" not in post.reply.plain_text()


async def test_discord_options_make_the_same_commands(bot: TestBot) -> None:
    """Discord sends `digest` as an `action` choice and a `value` (adapters/discord_commands)."""
    await bot.ask("subscribe dpo")
    text = build_text("digest", {"action": "max", "value": "7"})
    assert text == "digest max 7"
    assert "at most 7 papers a digest" in (await bot.ask(text)).plain_text()
    text = build_text("digest", {"action": "min-upvotes", "value": " 4 "})
    assert "4+ Hugging Face upvotes" in (await bot.ask(text)).plain_text()
    text = build_text("digest", {"action": "quiet on", "value": None})
    assert (await bot.ask(text)).title == "Quiet mode on."
    missing = await bot.ask(build_text("digest", {"action": "max"}))
    assert missing.title == "`digest max` takes a whole number from 1 to 30."


# ------------------------------------------------------------------ the digest tick


class ManagedChannel:
    """One channel's manager typing commands, and the digest ticks posting into it."""

    def __init__(self, engine: Engine) -> None:
        self.now = MONDAY
        self.store = PaperStore(engine)
        self.adapter = FakeAdapter()
        self.service = BotService(Settings(), self.store, clock=lambda: self.now)

    async def say(self, text: str) -> str:
        here = ChannelRef.parse(KEY)
        reply = await self.service.ask(Invocation(text, here, UserRef("slack", "U1")))
        assert reply.kind is not ReplyKind.ERROR, reply.plain_text()
        return reply.plain_text()

    def arrive(self, at: datetime, upvotes: list[int]) -> None:
        day = at.strftime("%m%d")
        papers = [
            paper(f"26{day[:2]}.{day[2:]}{i:03d}", f"Reward model study number {i}", upvotes=u)
            for i, u in enumerate(upvotes)
        ]
        self.store.upsert_many(papers, at)

    async def tick(self, at: datetime) -> list[Post]:
        self.now = at
        before = len(self.adapter.delivered)
        await self.service.deliver_due(Outbox({"slack": self.adapter}), at)
        return self.adapter.delivered[before:]


async def test_the_tick_keeps_to_the_budget_and_counts_the_rest(engine: Engine) -> None:
    chan = ManagedChannel(engine)
    await chan.say("subscribe reward")
    await chan.say("digest max 3")
    await chan.say("digest min-upvotes 5")
    chan.arrive(MONDAY - timedelta(hours=3), list(range(1, 16)))  # 1..15 upvotes
    [post] = await chan.tick(SLOT + timedelta(seconds=5))
    shown = [card.upvotes for card in post.reply.cards]
    assert shown == [15, 14, 13]
    assert post.reply.more == 8  # 5..12 upvotes: the papers under 5 are not counted
    text = post.reply.plain_text()
    assert post.reply.title.startswith("11 new papers on your topics since")
    assert "+8 more" in text
    # What was left out is not delivered: raising the cap next day does not post it again.
    await chan.say("digest max 30")
    chan.arrive(SLOT + timedelta(hours=20), [50])
    [post] = await chan.tick(SLOT + timedelta(days=1, seconds=5))
    assert [card.upvotes for card in post.reply.cards] == [50] and post.reply.more == 0


async def test_quiet_posts_nothing_on_a_day_with_nothing_that_passes(engine: Engine) -> None:
    chan = ManagedChannel(engine)
    await chan.say("subscribe reward")
    await chan.say("digest min-upvotes 10")
    # Quiet off (as before): a day whose papers are all under the floor gets one line.
    chan.arrive(MONDAY + timedelta(minutes=30), [1, 2, 3])
    [post] = await chan.tick(SLOT + timedelta(seconds=5))
    assert post.reply.cards == ()
    assert post.reply.title.startswith("No new papers with 10+ upvotes on reward since")
    # Quiet on: the same kind of day posts nothing, and the slot is done (no retry).
    await chan.say("digest quiet on")
    chan.arrive(SLOT + timedelta(hours=20), [4, 9])
    assert await chan.tick(SLOT + timedelta(days=1, seconds=5)) == []
    assert await chan.tick(SLOT + timedelta(days=1, minutes=5)) == []
    # A paper that passes is posted as usual, quiet or not.
    chan.arrive(SLOT + timedelta(days=1, hours=20), [12, 3])
    [post] = await chan.tick(SLOT + timedelta(days=2, seconds=5))
    assert [card.upvotes for card in post.reply.cards] == [12] and post.reply.more == 0
    # Off again: an empty day gets its line again.
    await chan.say("digest quiet off")
    [post] = await chan.tick(SLOT + timedelta(days=3, seconds=5))
    assert post.reply.title.startswith("No new papers with 10+ upvotes on reward since")
