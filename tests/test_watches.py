"""Personal watches through `BotService`: `/papers watch`, `watches`, `unwatch`, and the daily
direct message through the digest tick and the delivery ledger (a recording fake adapter)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from bot.config import Settings
from bot.db import make_engine
from bot.messages import ChannelRef, Invocation, Reply, UserRef
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from bot.watches import MAX_WATCHES, PAUSED
from tests.conftest import NOW
from tests.fakes import FakeAdapter, TestBot, ambiguous, gone, paper, rate_limited

HERE = ChannelRef("slack", "T1", "C1")
MINE = "slack:T1:@U1"  # where U1's watches go
FIRST = datetime(2026, 6, 16, 8, 0, 30, tzinfo=UTC)  # NOW is Monday 12:00: Tuesday's tick
DAY = timedelta(days=1)


def said(user: str, text: str, channel: ChannelRef = HERE, **kw: object) -> Invocation:
    return Invocation(text, channel, UserRef(channel.platform, user), **kw)  # type: ignore[arg-type]


async def ask(bot: TestBot, text: str, user: str = "U1", channel: ChannelRef = HERE) -> Reply:
    return await bot.service.ask(said(user, text, channel))


def publish(store: PaperStore, pid: str, title: str, at: datetime) -> None:
    """A paper announced (and fetched) at `at`."""
    store.upsert_many([paper(pid, title, "We study it.", published_at=at, upvotes=3)], at)


async def tick(bot: TestBot, at: datetime) -> None:
    bot.now = at
    await bot.service.deliver_due(bot.outbox, at)


def dms(bot: TestBot, key: str = MINE) -> list[list[str]]:
    """The papers of each direct message `key` received, in order."""
    return [post.paper_ids for post in bot.outbox.sent if post.channel == key]


def slack(bot: TestBot) -> FakeAdapter:
    adapter = bot.outbox.adapters["slack"]
    assert isinstance(adapter, FakeAdapter)
    return adapter


# ------------------------------------------------------------------------- commands


async def test_watch_is_answered_privately_and_confirms_with_a_preview(bot: TestBot) -> None:
    reply = await ask(bot, "watch author:rafailov")
    assert not reply.is_error and reply.ephemeral
    text = reply.plain_text()
    assert "Watching author:rafailov for you." in text
    assert "after 08:00 UTC" in text
    assert "Direct Preference Optimization" in text  # the four-week preview's example
    assert "Only you can see your watches" in text


async def test_watch_needs_no_channel_permission(bot: TestBot) -> None:
    reply = await bot.service.ask(said("U1", "watch dpo", can_manage=False))
    assert not reply.is_error
    assert bot.store.subscriptions(HERE.key) == []  # the channel follows nothing
    assert [s.query for s in bot.store.subscriptions(MINE)] == ["dpo"]


async def test_watches_belong_to_the_user_in_their_workspace(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    await ask(bot, "watch diffusion", channel=ChannelRef("slack", "T1", "D42"))  # in a DM
    mine = (await ask(bot, "watches", channel=ChannelRef("slack", "T1", "C9"))).plain_text()
    assert "1. dpo" in mine and "2. diffusion" in mine
    assert "paused" not in mine
    assert "Next direct message: Tue 16 Jun 08:00 UTC" in mine
    theirs = await ask(bot, "watches", user="U2")
    assert "You watch nothing yet." in theirs.title
    other_team = await ask(bot, "watches", channel=ChannelRef("slack", "T2", "C1"))
    assert "You watch nothing yet." in other_team.title
    assert "No topics yet" in (await ask(bot, "list")).plain_text()  # not the channel's


async def test_the_same_watch_twice_is_one(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    again = await ask(bot, "watch  DPO ")
    assert "You already watch" in again.title
    assert len(bot.store.subscriptions(MINE)) == 1


async def test_unwatch_by_number_or_text(bot: TestBot) -> None:
    for query in ("dpo", "rlhf", "author:rafailov"):
        await ask(bot, f"watch {query}")
    reply = await ask(bot, "unwatch 2")
    assert reply.title == "Stopped watching rlhf." and "2 watches left." in reply.text
    reply = await ask(bot, "unwatch author:rafailov")
    assert reply.title == "Stopped watching author:rafailov."
    assert [s.query for s in bot.store.subscriptions(MINE)] == ["dpo"]
    assert (await ask(bot, "unwatch dpo", user="U2")).is_error  # not theirs to remove
    assert "No watches left" in (await ask(bot, "unwatch 1")).text


async def test_a_user_has_at_most_the_cap_of_watches(bot: TestBot) -> None:
    for n in range(MAX_WATCHES):
        assert not (await ask(bot, f"watch topic{n}")).is_error
    reply = await ask(bot, "watch one more")
    assert reply.is_error and "\n" not in reply.title
    assert f"You already have {MAX_WATCHES} watches" in reply.title
    assert not (await ask(bot, "watch topic3")).is_error  # one already there is fine
    assert len(bot.store.subscriptions(MINE)) == MAX_WATCHES


@pytest.mark.parametrize(
    "text",
    [
        "watch",
        "watch    ",
        "watch has:banana",
        "watch stars:abc",
        "watch -",
        "watch " + "x" * 600,
        "watch ( ( (",
        "watch since:7d",
        "watch until:2020-01-01",
        "unwatch",
        "unwatch 0",
        "unwatch 99",
        "unwatch -1",
        "unwatch 99999999999999999999999999",
        "unwatch " + "<!channel> " * 300,
    ],
)
async def test_hostile_watch_commands_get_one_line(bot: TestBot, text: str) -> None:
    reply = await ask(bot, text)
    assert reply.is_error, reply.plain_text()
    assert reply.title and "\n" not in reply.title and len(reply.title) < 160
    assert "Traceback" not in reply.plain_text()
    assert bot.store.subscriptions(MINE) == []


# ---------------------------------------------------------------------- the daily DM


async def test_a_watch_sends_one_dm_a_day_with_new_papers_only(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    publish(bot.store, "2606.00002", "Diffusion for proteins", NOW + timedelta(hours=2))

    await tick(bot, FIRST)
    await tick(bot, FIRST + timedelta(minutes=1))  # a second tick the same day
    await tick(bot, FIRST + timedelta(hours=6))
    # The backlog (the DPO paper of the day before the watch) is not in it.
    assert dms(bot) == [["2606.00001"]]
    [post] = bot.outbox.sent
    assert post.reply.title.startswith("1 new paper on your watches since")
    assert "/papers unwatch N" in post.reply.footer
    assert post.reply.cards[0].matched_topics == ("dpo",)

    publish(
        bot.store, "2606.00003", "Direct preference optimization, again", FIRST + timedelta(hours=6)
    )
    await tick(bot, FIRST + DAY)
    assert dms(bot) == [["2606.00001"], ["2606.00003"]]
    assert bot.service.ledger.statuses(MINE) == {"2606.00001": "sent", "2606.00003": "sent"}


async def test_a_day_with_nothing_new_sends_nothing(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    await tick(bot, FIRST)
    await tick(bot, FIRST + DAY)
    assert dms(bot) == []


async def test_papers_matching_several_watches_come_once_with_each_watch(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    await ask(bot, "watch scale")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    await tick(bot, FIRST)
    [post] = bot.outbox.sent
    assert post.paper_ids == ["2606.00001"]
    assert set(post.reply.cards[0].matched_topics) == {"dpo", "scale"}


async def test_each_user_gets_their_own_dm_and_a_channel_digest_is_separate(
    bot: TestBot,
) -> None:
    await ask(bot, "watch dpo")
    await ask(bot, "watch dpo", user="U2")
    await ask(bot, "subscribe dpo")  # the channel too
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    await tick(bot, FIRST + timedelta(hours=1))  # past the channel's 09:00 slot too
    assert dms(bot) == [["2606.00001"]]
    assert dms(bot, "slack:T1:@U2") == [["2606.00001"]]
    [channel_digest] = dms(bot, HERE.key)  # its own window: the week before too
    assert "2606.00001" in channel_digest


async def test_a_user_chooses_when_their_message_comes(bot: TestBot) -> None:
    # 18:30 in New York is 22:30 UTC in June. The paper that the default 08:00 UTC message
    # carries on Tuesday morning (as in the test above) comes at Tuesday's first tick after
    # 22:30 UTC instead. The time stays when the user removes every watch and starts again;
    # it is theirs alone.
    await ask(bot, "watch dpo")
    set_to = await ask(bot, "watches at 18:30 America/New_York")
    assert set_to.title == "Your direct message now comes daily after 18:30 America/New_York."
    assert "Next one: " in set_to.text and set_to.ephemeral
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    sent_at: list[datetime] = []
    for hours in range(1, 48):  # a tick every hour, from Monday 13:00 UTC for two days
        at = NOW + timedelta(hours=hours, seconds=30)
        await tick(bot, at)
        sent_at += [at] * (len(dms(bot)) - len(sent_at))
    assert dms(bot) == [["2606.00001"]]
    # At the first tick after 22:30 UTC (18:30 in New York), not at 08:00 UTC.
    assert [(t.hour, t.minute) for t in sent_at] == [(23, 0)]
    listing = await ask(bot, "watches")
    assert "Next direct message: " in listing.text and "EDT" in listing.text
    await ask(bot, "unwatch 1")
    again = await ask(bot, "watch rlhf")
    assert "after 18:30 America/New_York" in again.text
    other = await ask(bot, "watch rlhf", user="U2")
    assert "after 08:00 UTC" in other.text


@pytest.mark.parametrize(
    "text",
    [
        "watches at",
        "watches at noon",
        "watches at 25:00",
        "watches at 18:30 Mars/Olympus",
        "watches at 18:30 UTC extra",
        "watches Europe/Berlin",
        "watches at 9:5",
        "watches at 09:00 " + "A" * 300,
        "watches at 09:00 Europe/" + "B" * 300,
    ],
)
async def test_a_watch_time_that_is_not_one_gets_one_line(bot: TestBot, text: str) -> None:
    reply = await ask(bot, text)
    assert reply.kind.value == "error" and reply.ephemeral
    assert "watches at 07:30 Europe/Berlin" in reply.text
    assert "schedule" not in reply.text  # the channel command is not the answer here
    assert bot.store.channel(MINE) is None  # nothing was made


async def test_moving_the_time_never_sends_twice_in_a_day(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    await tick(bot, FIRST)  # Tuesday 08:00 UTC: the first message
    publish(bot.store, "2606.00002", "DPO for robots", FIRST + timedelta(hours=1))
    bot.now = FIRST + timedelta(hours=2)
    moved = await ask(bot, "watches at 12:00")
    assert "Next one: Wed 17 Jun 12:00 UTC" in moved.text
    await tick(bot, FIRST + timedelta(hours=4))  # Tuesday 12:00 UTC: not a second message
    assert dms(bot) == [["2606.00001"]]
    await tick(bot, FIRST + DAY + timedelta(hours=4))
    assert dms(bot) == [["2606.00001"], ["2606.00002"]]


async def test_moving_the_time_while_a_message_is_due_still_sends_it(bot: TestBot) -> None:
    # Tuesday 08:00 UTC has passed and the tick has not run yet: today's message is not
    # pushed to tomorrow by the move.
    await ask(bot, "watch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    bot.now = datetime(2026, 6, 16, 8, 0, 10, tzinfo=UTC)
    await ask(bot, "watches at 07:00")
    await tick(bot, FIRST)
    assert dms(bot) == [["2606.00001"]]


async def test_a_time_without_a_zone_keeps_the_users_zone(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    await ask(bot, "watches at 18:30 America/New_York")
    again = await ask(bot, "watches at 07:00")
    assert again.title == "Your direct message now comes daily after 07:00 America/New_York."
    assert "1. dpo" in (await ask(bot, "watches list")).text


async def test_unwatch_stops_the_messages(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    await ask(bot, "unwatch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    await tick(bot, FIRST)
    assert dms(bot) == []


async def test_watching_again_after_removing_all_starts_from_now(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    await ask(bot, "unwatch 1")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    bot.now = NOW + 3 * DAY  # Thursday: no watches meanwhile
    await ask(bot, "watch dpo")
    publish(bot.store, "2606.00002", "DPO for robots", bot.now + timedelta(hours=1))
    await tick(bot, FIRST + 3 * DAY)
    assert dms(bot) == [["2606.00002"]]  # not the paper of the days without a watch


async def test_a_blocked_user_is_paused_after_one_failure_and_resumes_on_watches(
    bot: TestBot,
) -> None:
    await ask(bot, "watch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    slack(bot).fail_next(gone())
    await tick(bot, FIRST)
    publish(bot.store, "2606.00002", "DPO for robots", FIRST + timedelta(hours=1))
    for later in (timedelta(minutes=5), timedelta(hours=1), DAY, 2 * DAY):
        await tick(bot, FIRST + later)
    assert len(slack(bot).attempts) == 1  # not retried, not tried again the next days
    assert dms(bot) == []

    bot.now = FIRST + 2 * DAY + timedelta(hours=3)
    listing = (await ask(bot, "watches")).plain_text()
    assert "1. dpo · about" in listing and PAUSED in listing
    assert "could not be delivered" in listing
    assert PAUSED not in (await ask(bot, "watches")).plain_text()  # resumed by the first

    await tick(bot, FIRST + 3 * DAY)
    assert dms(bot) == [["2606.00002"]]  # resumed; the failed message is not sent again


async def test_a_watch_command_also_resumes_a_paused_user(bot: TestBot) -> None:
    await ask(bot, "watch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    slack(bot).fail_next(gone())
    await tick(bot, FIRST)
    reply = await ask(bot, "watch rlhf")
    assert "were paused" in reply.text
    publish(bot.store, "2606.00002", "DPO for robots", FIRST + timedelta(hours=1))
    await tick(bot, FIRST + DAY)
    assert dms(bot) == [["2606.00002"]]


async def test_a_rate_limited_dm_is_retried_once_and_an_unknown_one_never(
    bot: TestBot,
) -> None:
    await ask(bot, "watch dpo")
    await ask(bot, "watch dpo", user="U2")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    slack(bot).fail_next(rate_limited(30), ambiguous())
    await tick(bot, FIRST)
    await tick(bot, FIRST + timedelta(minutes=1))
    await tick(bot, FIRST + DAY)
    statuses = {
        key: bot.service.ledger.statuses(key)["2606.00001"] for key in (MINE, "slack:T1:@U2")
    }
    assert sorted(statuses.values()) == ["sent", "unknown"]
    # 3 sends in all: the refused one, its retry, and the unknown one (never again).
    assert len(slack(bot).attempts) == 3
    status = (await ask(bot, "status")).plain_text()
    assert "direct messages (watches): not resent" in status


async def test_the_console_prints_your_dm_in_the_terminal(bot: TestBot) -> None:
    import io

    from adapters.console import ConsoleAdapter

    out = io.StringIO()
    console = ConsoleAdapter(bot.service, stdout=out, interactive=False)
    bot.service.outbox = Outbox({"console": console})
    await console.ask("/papers watch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    await bot.service.deliver_due(Outbox({"console": console}), FIRST)
    printed = out.getvalue()
    assert "[direct message to you]" in printed
    assert "1 new paper on your watches" in printed and "DPO at scale" in printed


# ----------------------------------------------------------------- two instances


async def test_two_instances_send_one_dm(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(2)]
    try:
        services = [BotService(Settings(), PaperStore(e), clock=lambda: NOW) for e in engines]
        await services[0].ask(said("U1", "watch dpo"))
        publish(services[0].store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
        adapter = FakeAdapter()
        outbox = Outbox({"slack": adapter})
        for _ in range(2):
            await asyncio.gather(*(s.deliver_due(outbox, FIRST) for s in services))
        await asyncio.gather(*(s.deliver_due(outbox, FIRST + timedelta(hours=1)) for s in services))
    finally:
        for e in engines:
            e.dispose()
    assert [post.paper_ids for post in adapter.delivered] == [["2606.00001"]]
    assert adapter.delivered[0].channel == MINE


async def test_an_operator_can_preview_and_post_a_users_dm_by_its_key(bot: TestBot) -> None:
    """`paperboy digest --channel slack:T1:@U1 [--dry-run]` goes through these commands."""
    await ask(bot, "watch dpo")
    publish(bot.store, "2606.00001", "DPO at scale", NOW + timedelta(hours=2))
    bot.now = NOW + timedelta(hours=13)  # announced at 20:00 New York time, before 08:00 UTC
    user_dm = ChannelRef.parse(MINE)
    preview = await bot.service.ask(said("operator", "digest", user_dm))
    assert preview.title.startswith("Preview: 1 new paper on your watches")
    posted = await bot.service.ask(said("operator", "digest post", user_dm))
    assert "Posted" in posted.title
    assert dms(bot) == [["2606.00001"]]  # to the user, no backlog, through the ledger
    await tick(bot, FIRST)
    assert dms(bot) == [["2606.00001"]]


@pytest.mark.parametrize("command", ["unwatch", "unsubscribe"])
async def test_a_number_in_another_script_is_not_a_number(bot: TestBot, command: str) -> None:
    # "²" (and "①", "٣") are digits to str.isdigit but not to int(): one line, nothing removed.
    await ask(bot, "watch dpo")
    await ask(bot, "subscribe dpo")
    reply = await ask(bot, f"{command} ²")
    assert reply.is_error and "\n" not in reply.title, reply.plain_text()
    assert "went wrong" not in reply.title
    assert [s.query for s in bot.store.subscriptions(MINE)] == ["dpo"]
