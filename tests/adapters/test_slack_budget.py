"""The noise-budget commands and `/papers catchup` through the Slack adapter and the fake Slack
Web API: what a team types (`subscribe` with its preview, `digest max|min-upvotes|quiet`,
`list`, `catchup`), what the ack shows, and what the store and the ledger hold afterwards."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from adapters.slack import SlackAdapter
from bot.models import Delivery, DigestRun
from bot.ports import Outbox
from bot.service import BotService
from tests.adapters.fake_slack import FakeSlackApi, assert_valid_blocks, slack_api
from tests.adapters.test_slack import command as slash, shown, wired
from tests.conftest import NOW
from tests.fakes import Clock

__all__ = ["slack_api", "wired"]  # fixtures, imported for pytest

KEY = "slack:T0001:C0001"
_URLS = (f"u{n}" for n in itertools.count())


async def command(adapter: SlackAdapter, fake: FakeSlackApi, text: str) -> tuple[int, Any]:
    """`/papers <text>` and what the user ends up seeing: the ack, or, when the answer took
    longer than the ack budget (a busy machine), the message posted to its response_url."""
    url = next(_URLS)
    status, ack = await slash(adapter, fake, text, url=url)
    if "blocks" in ack:
        return status, ack
    [later] = await fake.wait_for_response(url)
    assert_valid_blocks(later)
    return status, later


def ledger_rows(service: BotService) -> tuple[int, int]:
    with Session(service.store.engine) as session:
        runs = session.execute(select(func.count()).select_from(DigestRun)).scalar_one()
        sent = session.execute(select(func.count()).select_from(Delivery)).scalar_one()
    return int(runs), int(sent)


async def test_subscribe_preview_then_the_budget_from_slack(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock], slack_api: FakeSlackApi
) -> None:
    service, adapter, _, _ = wired
    _, ack = await command(adapter, slack_api, "subscribe dpo")
    assert ack["response_type"] == "in_channel"
    assert "Subscribed this channel to dpo" in shown(ack)
    assert "Over the last four weeks: about" in shown(ack)
    assert "Direct Preference Optimization" in shown(ack)  # one of its examples

    for text, answer in (
        ("digest max 5", "at most 5 papers a digest"),
        ("digest min-upvotes 3", "3+ Hugging Face upvotes"),
        ("digest quiet on", "Quiet mode on."),
    ):
        status, ack = await command(adapter, slack_api, text)
        assert status == 200 and answer in shown(ack), text
    channel = service.store.channel(KEY)
    assert channel is not None
    assert (channel.max_papers, channel.min_upvotes, channel.quiet) == (5, 3, True)

    _, listing = await command(adapter, slack_api, "list")
    text = shown(listing)
    assert "dpo · about" in text and "papers a week" in text
    assert "Budget: at most 5 papers a digest" in text and "3+ Hugging Face upvotes" in text
    assert "Quiet on" in text

    # A bad value is one line, and changes nothing.
    _, ack = await command(adapter, slack_api, "digest max 31")
    assert ack["response_type"] == "ephemeral" and "1" in shown(ack) and "30" in shown(ack)
    assert service.store.channel(KEY).max_papers == 5  # type: ignore[union-attr]
    assert slack_api.posts() == []  # everything was answered in the ack


async def test_catchup_is_private_and_leaves_the_ledger_alone(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock], slack_api: FakeSlackApi
) -> None:
    service, adapter, outbox, clock = wired
    await command(adapter, slack_api, "subscribe dpo")
    await command(adapter, slack_api, "digest post")  # the channel's digest posts the papers
    [post] = slack_api.posts()
    assert "Direct Preference Optimization" in str(post["blocks"])
    before = ledger_rows(service)
    assert before[1] >= 1

    clock.now = NOW + timedelta(days=2)  # back from a two-day break
    status, ack = await command(adapter, slack_api, "catchup")
    assert status == 200 and ack["response_type"] == "ephemeral"
    text = shown(ack)
    assert "Catch-up" in text and "in the last week" in text
    assert "Direct Preference Optimization" in text  # already posted: a catch-up still shows it
    assert ledger_rows(service) == before  # no run, no claim, no delivery
    assert len(slack_api.posts()) == 1  # nothing was posted to the channel
    await service.deliver_due(outbox, clock.now)  # the next scheduled digest
    later = [str(p["blocks"]) for p in slack_api.posts()[1:]]
    assert later and not any("Direct Preference Optimization" in p for p in later)

    _, ack = await command(adapter, slack_api, "catchup 2w")
    assert "in the last 2 weeks" in shown(ack)


async def test_catchup_answers_every_input_in_one_line(
    wired: tuple[BotService, SlackAdapter, Outbox, Clock], slack_api: FakeSlackApi
) -> None:
    _, adapter, _, _ = wired
    _, ack = await command(adapter, slack_api, "catchup")
    assert ack["response_type"] == "ephemeral"
    assert "nothing to catch up on" in shown(ack) and "/papers subscribe dpo" in shown(ack)
    await command(adapter, slack_api, "subscribe dpo")
    for bad in ("3m", "31d", "5w", "0d", "yesterday", "7d 2w", "-7d"):
        _, ack = await command(adapter, slack_api, f"catchup {bad}")
        assert ack["response_type"] == "ephemeral", bad
        assert "is not a period I can catch up on" in shown(ack), bad
        assert "/papers catchup 7d" in shown(ack), bad
