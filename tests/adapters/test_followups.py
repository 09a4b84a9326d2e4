"""Follow-ups in the original thread, end to end: a digest is posted through the fake Slack
Web API (or an autospec'd discord.py channel), the paper gets news days later (a refresh
merges a GitHub repo, a new version, upvotes), and the next tick replies in that post's
thread, once, whatever happens: two instances on one store, a process killed at any step,
a parent someone deleted. SQLite and the real PostgreSQL (`engine` fixture).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest
from sqlalchemy import Engine

from adapters.slack import SlackAdapter
from bot.config import Settings
from bot.db import make_engine
from bot.followup_ledger import FollowUpLedger, recent_posts
from bot.ledger import STALE_AFTER, Ledger
from bot.messages import ChannelRef, Invocation, UserRef
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from tests.adapters.fake_slack import FakeSlackApi, Scripted, slack_api
from tests.adapters.test_discord import discord_outbox
from tests.adapters.test_slack import Sleeps, posting_adapter, settings, slack_outbox
from tests.conftest import NOW
from tests.fakes import paper, setup_channel

__all__ = ["slack_api"]

KEY = "slack:T0001:C0001"
DKEY = "discord:42:4242"
PID = "2606.00001"
TITLE = "Direct preference optimization at scale"
SLOT = datetime(2026, 6, 16, 9, 0, tzinfo=NOW.tzinfo)
TICK = SLOT + timedelta(seconds=30)
NEWS_AT = TICK + timedelta(days=3)  # a refresh learns about the code three days later
AFTER = NEWS_AT + timedelta(seconds=30)  # the next tick
REPO = "https://github.com/acme/dpo-at-scale"
CHILD = Path(__file__).with_name("followup_child.py")


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def store(engine: Engine) -> Iterator[PaperStore]:
    yield PaperStore(engine)


def seed(store: PaperStore, key: str = KEY) -> None:
    """A channel following dpo, quiet (a day without papers posts nothing), and one paper."""
    setup_channel(store, key, ["dpo"], NOW, quiet=True)
    store.upsert_many(
        [
            paper(
                PID,
                TITLE,
                "We scale DPO.",
                upvotes=12,
                version=1,
                published_at=NOW + timedelta(hours=2),
                hf_daily_date=(NOW + timedelta(hours=2)).date(),
            )
        ],
        NOW + timedelta(hours=2),
    )


def code_released(store: PaperStore, at: datetime = NEWS_AT, **more: Any) -> None:
    """A refresh merges what Hugging Face now knows: a GitHub repo (and whatever else)."""
    store.upsert_many(
        [paper(PID, TITLE, "We scale DPO.", upvotes=12, github_repo=REPO, **more)], at
    )


async def ask(service: BotService, text: str, key: str = KEY, manage: bool = True) -> str:
    reply = await service.ask(
        Invocation(text, ChannelRef.parse(key), UserRef("slack", "U1"), can_manage=manage)
    )
    return f"{reply.title}\n{reply.text}"


@pytest.fixture
async def slack(
    store: PaperStore, slack_api: FakeSlackApi
) -> AsyncIterator[tuple[BotService, Outbox, Sleeps]]:
    async with slack_outbox(store, slack_api) as (service, outbox, sleeps):
        seed(store)
        yield service, outbox, sleeps


def parent_ts(fake: FakeSlackApi) -> str:
    (digest,) = [m for m in top_level(fake) if TITLE in str(m.get("text"))]
    return str(digest["ts"])


def top_level(fake: FakeSlackApi) -> list[dict[str, Any]]:
    return [m for m in fake.channel_messages.get("C0001", []) if "thread_ts" not in m]


async def test_code_released_is_one_reply_in_the_digest_thread(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    service, outbox, _ = slack
    await service.deliver_due(outbox, TICK)
    parent = parent_ts(slack_api)
    code_released(store, github_stars=40)

    report = await service.deliver_due(outbox, AFTER)
    assert report.followups.queued == 1 and report.followups.posted == 1
    (reply,) = slack_api.thread("C0001", parent)
    assert reply["text"].startswith(f"Code released (40 ★): {TITLE}")
    assert REPO in str(slack_api.posts()[-1]["blocks"])
    assert reply["metadata"]["event_type"] == "paperboy_followup"
    assert len(top_level(slack_api)) == 1  # the digest only: never a new top-level post
    post = slack_api.posts()[-1]
    assert post["thread_ts"] == parent and "reply_broadcast" not in post

    for later in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)):
        await service.deliver_due(outbox, AFTER + later)
    code_released(store, AFTER + timedelta(days=1, hours=1))  # the same news again
    await service.deliver_due(outbox, AFTER + timedelta(days=1, hours=2))
    assert len(slack_api.thread("C0001", parent)) == 1
    # Digests, their resend and their status never see the reply.
    assert service.ledger.statuses(KEY) == {PID: "sent"}
    assert "unknown" not in await ask(service, "status")
    assert (await ask(service, "digest resend")).startswith("No post here has an unknown")


async def test_each_kind_of_news_once_and_a_jump_over_thresholds_is_one_reply(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    service, outbox, _ = slack
    await service.deliver_due(outbox, TICK)
    parent = parent_ts(slack_api)
    store.upsert_many(
        [
            paper(
                PID,
                TITLE,
                upvotes=230,
                version=2,
                source="arxiv",
                arxiv_comment="Accepted at NeurIPS 2026",
            )
        ],
        NEWS_AT,
    )
    await service.deliver_due(outbox, AFTER)
    texts = sorted(m["text"].split(":")[0] for m in slack_api.thread("C0001", parent))
    assert texts == [
        "Accepted at NeurIPS 2026",
        "New arXiv version",
        "Now #1 on Hugging Face this week, 230 upvotes",
    ]
    store.upsert_many([paper(PID, TITLE, upvotes=260, version=3, source="arxiv")], AFTER)
    await service.deliver_due(outbox, AFTER + timedelta(minutes=1))
    assert len(slack_api.thread("C0001", parent)) == 3  # v3 and 260 upvotes: nothing new
    store.upsert_many([paper(PID, TITLE, upvotes=510)], AFTER + timedelta(minutes=2))
    await service.deliver_due(outbox, AFTER + timedelta(minutes=3))
    assert "510 upvotes" in slack_api.thread("C0001", parent)[-1]["text"]


async def test_off_means_no_reply_and_list_says_so(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    service, outbox, _ = slack
    await service.deliver_due(outbox, TICK)
    refused = await ask(service, "followups off", manage=False)
    assert refused.startswith("Only people who can manage this channel")
    assert (await ask(service, "followups", manage=False)).startswith("Follow-ups: on")
    assert (await ask(service, "followups off")).startswith("Follow-ups are off")
    assert "Follow-ups: off." in await ask(service, "list")
    code_released(store)
    report = await service.deliver_due(outbox, AFTER)
    assert report.followups.posted == 0
    assert slack_api.thread("C0001", parent_ts(slack_api)) == []
    assert "is not a setting" in await ask(service, "followups maybe")


def test_a_paper_sent_in_a_watch_direct_message_gets_no_follow_up(store: PaperStore) -> None:
    # A personal watch's DM is at most one message a day: news never threads under it.
    ledger = Ledger(store.engine)
    for key in (KEY, "slack:T0001:@U1"):
        assert ledger.claim(key, PID, TICK)
        ledger.mark(key, [PID], "sent", TICK, message_ref="C0001:1.0")
    assert [post[0] for post in recent_posts(store.engine, [PID], NOW)] == [KEY]


async def test_a_post_older_than_30_days_gets_nothing(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    service, outbox, _ = slack
    await service.deliver_due(outbox, TICK)
    late = TICK + timedelta(days=31)
    code_released(store, late)
    await service.deliver_due(outbox, late + timedelta(seconds=30))
    assert slack_api.thread("C0001", parent_ts(slack_api)) == []
    assert len(slack_api.posts()) == 1


async def test_a_deleted_parent_gets_no_top_level_post_and_no_more_replies(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    service, outbox, _ = slack
    await service.deliver_due(outbox, TICK)
    slack_api.delete("C0001", parent_ts(slack_api))  # someone deleted the digest
    code_released(store)
    report = await service.deliver_due(outbox, AFTER)
    assert report.followups.orphaned == 1
    # Slack put the reply top-level (ST-3): it was removed at once.
    assert top_level(slack_api) == []
    assert len(slack_api.calls_to("chat.delete")) == 1
    store.upsert_many([paper(PID, TITLE, upvotes=120)], AFTER + timedelta(minutes=1))
    await service.deliver_due(outbox, AFTER + timedelta(minutes=2))
    assert len(slack_api.posts()) == 2  # the digest and the one orphan: nothing since
    rows = FollowUpLedger(store.engine).statuses(KEY)
    assert rows == {(PID, "code", 0): "orphaned"}


async def test_a_reply_refused_because_the_bot_was_removed_pauses_the_channel(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    # The bot was removed from the channel between the digest and the news: the reply is
    # refused, the channel pauses (as a refused digest does) and `/papers list` says why;
    # no further news is tried there.
    service, outbox, _ = slack
    await service.deliver_due(outbox, TICK)
    slack_api.error("chat.postMessage", "not_in_channel")
    code_released(store)
    report = await service.deliver_due(outbox, AFTER)
    assert report.followups.failed == 1
    assert "the bot cannot post here (" in (await ask(service, "list"))
    store.upsert_many([paper(PID, TITLE, upvotes=120)], AFTER + timedelta(minutes=1))
    before = len(slack_api.calls_to("chat.postMessage"))
    await service.deliver_due(outbox, AFTER + timedelta(minutes=2))
    assert len(slack_api.calls_to("chat.postMessage")) == before


async def test_an_unknown_reply_shows_in_status_until_it_is_checked(
    slack: tuple[BotService, Outbox, Sleeps], slack_api: FakeSlackApi, store: PaperStore
) -> None:
    # Slack did not answer the reply (503): nobody knows whether it landed. `/papers status`
    # says so, and once the next tick has looked in the thread (not there: sent again), the
    # line is gone.
    service, outbox, _ = slack
    await service.deliver_due(outbox, TICK)
    parent = parent_ts(slack_api)
    slack_api.script("chat.postMessage", Scripted({}, status=503))
    code_released(store)
    report = await service.deliver_due(outbox, AFTER)
    assert report.followups.unknown == 1
    status = await ask(service, "status")
    assert "1 follow-up reply has an unknown outcome in 1 channel" in status
    assert "1 in this channel." in status
    assert "follow-up" not in await ask(service, "status", key="slack:T0002:C0001")
    await service.deliver_due(outbox, AFTER + timedelta(minutes=10))
    assert len(slack_api.thread("C0001", parent)) == 1
    assert "follow-up" not in await ask(service, "status")


async def test_two_instances_reply_once(
    engine: Engine, slack_api: FakeSlackApi, store: PaperStore
) -> None:
    seed(store)
    first = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    adapter, outbox, _ = posting_adapter(first, slack_api)
    await first.deliver_due(outbox, TICK)
    code_released(store)
    engines = [make_engine(url_of(engine)) for _ in range(2)]
    services = [BotService(Settings.load(None, {}), PaperStore(e)) for e in engines]
    adapters = [SlackAdapter(s, settings(slack_api)) for s in services]
    try:
        reports = await asyncio.gather(
            *(
                s.deliver_due(Outbox({"slack": a}), AFTER)
                for s, a in zip(services, adapters, strict=True)
            )
        )
        await asyncio.gather(
            *(
                s.deliver_due(Outbox({"slack": a}), AFTER + timedelta(minutes=1))
                for s, a in zip(services, adapters, strict=True)
            )
        )
    finally:
        for a in [adapter, *adapters]:
            await a.stop()
        for e in engines:
            e.dispose()
    assert sum(r.followups.posted for r in reports) == 1
    assert len(slack_api.thread("C0001", parent_ts(slack_api))) == 1


async def crash(engine: Engine, fake: FakeSlackApi, stage: str, at: datetime) -> None:
    """One tick in a child process on the same store and fake Slack, SIGKILLed at `stage`
    (the fake answers while the child runs: this loop serves it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        url_of(engine),
        fake.base_url,
        stage,
        at.isoformat(),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == -9, err.decode()


@pytest.mark.parametrize("stage", ["claimed", "attempt", "posted"])
async def test_a_process_killed_at_any_step_replies_once(
    engine: Engine,
    slack: tuple[BotService, Outbox, Sleeps],
    slack_api: FakeSlackApi,
    store: PaperStore,
    stage: str,
) -> None:
    service, outbox, sleeps = slack
    await service.deliver_due(outbox, TICK)
    parent = parent_ts(slack_api)
    code_released(store)
    await crash(engine, slack_api, stage, AFTER)
    landed = len(slack_api.thread("C0001", parent))
    assert landed == (1 if stage == "posted" else 0)

    # Restarted (another instance, or this one) after the dead owner's lease ran out.
    later = AFTER + STALE_AFTER + timedelta(minutes=1)
    for n in range(4):
        sleeps.now += 61  # Slack lets an app read a thread once a minute
        await service.deliver_due(outbox, later + timedelta(minutes=3 * n))
    assert len(slack_api.thread("C0001", parent)) == 1
    assert FollowUpLedger(store.engine).statuses(KEY) == {(PID, "code", 0): "sent"}
    if stage != "claimed":  # the post may have been written: checked in the thread
        assert slack_api.calls_to("conversations.replies")[0].body["ts"] == parent


# ------------------------------------------------------------------- Discord


def invalid_form_body(field: str, message: str) -> discord.HTTPException:
    """Discord's 400 / 50035 with the field it is about, as discord.py reads it."""
    response = SimpleNamespace(status=400, reason="Bad Request", headers={})
    errors = {field: {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]}}
    return discord.HTTPException(
        response, {"code": 50035, "message": "Invalid Form Body", "errors": errors}
    )


class ReplyChannel:
    """An autospec'd PartialMessageable that records replies, and can say the message a
    reply refers to is gone (Discord's 50035 with fail_if_not_exists=True)."""

    def __init__(self) -> None:
        self.mock = create_autospec(discord.PartialMessageable, instance=True)
        self.sent: list[dict[str, Any]] = []
        self.parent_gone = False
        self.refuse_embeds = 0  # this many replies fail validation on their embed
        self.no_history = False  # replies refused: no Read Message History (160002)
        self.mock.send.side_effect = self._send

    async def _send(self, **kwargs: Any) -> Any:
        reference = kwargs.get("reference")
        if reference is not None and self.parent_gone:
            raise invalid_form_body("message_reference", "Unknown message")
        if reference is not None and self.no_history:
            response = SimpleNamespace(status=403, reason="Forbidden", headers={})
            message = "Cannot reply without permission to read message history"
            raise discord.Forbidden(response, {"code": 160002, "message": message})
        if reference is not None and self.refuse_embeds:
            self.refuse_embeds -= 1
            raise invalid_form_body("embeds", "Must be 4096 or fewer in length.")
        self.sent.append(kwargs)
        return SimpleNamespace(id=7000 + len(self.sent), reference=reference)


@pytest.fixture
async def discord_side(store: PaperStore) -> AsyncIterator[tuple[BotService, Outbox, Any]]:
    channel = ReplyChannel()
    async with discord_outbox(store, channel.mock) as (service, outbox):
        seed(store, DKEY)
        yield service, outbox, channel


async def test_discord_reply_refers_to_the_digest_message_once(
    discord_side: tuple[BotService, Outbox, ReplyChannel], store: PaperStore
) -> None:
    service, outbox, channel = discord_side
    await service.deliver_due(outbox, TICK)
    code_released(store)
    for later in (timedelta(0), timedelta(minutes=1), timedelta(hours=1)):
        await service.deliver_due(outbox, AFTER + later)
    digest, reply = channel.sent
    reference = reply["reference"]
    assert isinstance(reference, discord.MessageReference)
    assert reference.message_id == 7001 and reference.channel_id == 4242
    assert reference.fail_if_not_exists is True  # never a top-level fallback (DT-2)
    assert reply["mention_author"] is False
    assert reply["allowed_mentions"].everyone is False
    assert "Code released" in reply["embeds"][0].title
    assert "reference" not in digest


async def news_refused(
    side: tuple[BotService, Outbox, ReplyChannel], store: PaperStore, **refusal: Any
) -> Any:
    """The digest posted, then the channel set to refuse (`refusal`: ReplyChannel's switches)
    and the paper's code released: the next tick's report."""
    service, outbox, channel = side
    await service.deliver_due(outbox, TICK)
    for switch, value in refusal.items():
        setattr(channel, switch, value)
    code_released(store)
    return await service.deliver_due(outbox, AFTER)


async def test_discord_deleted_parent_fails_without_top_level_post(
    discord_side: tuple[BotService, Outbox, ReplyChannel], store: PaperStore
) -> None:
    service, outbox, channel = discord_side
    report = await news_refused(discord_side, store, parent_gone=True)
    assert report.followups.orphaned == 1
    await service.deliver_due(outbox, AFTER + timedelta(hours=1))
    assert len(channel.sent) == 1  # the digest only
    assert channel.mock.send.call_count == 2  # one refused reply, never retried


async def test_discord_refusing_one_reply_leaves_the_post_open_for_news(
    discord_side: tuple[BotService, Outbox, ReplyChannel], store: PaperStore
) -> None:
    # 50035 about anything but the message reference (an embed Discord refused) fails that
    # reply only: the post is still there, and its next news is told.
    service, outbox, channel = discord_side
    report = await news_refused(discord_side, store, refuse_embeds=1)
    assert report.followups.orphaned == 0
    code_released(store, NEWS_AT + timedelta(days=1), version=2)
    await service.deliver_due(outbox, AFTER + timedelta(days=1))
    titles = [sent["embeds"][0].title for sent in channel.sent[1:]]
    assert any("New arXiv version" in title for title in titles), titles


async def test_discord_reply_without_read_history_fails_and_digests_go_on(
    discord_side: tuple[BotService, Outbox, ReplyChannel], store: PaperStore
) -> None:
    # Without Read Message History Discord refuses every reply (403, 160002), yet the bot
    # may still post there: the reply fails for good, the channel is not paused.
    service = discord_side[0]
    report = await news_refused(discord_side, store, no_history=True)
    assert report.followups.failed == 1
    assert "cannot post here" not in await ask(service, "list", key=DKEY)
    assert report.paused == []
