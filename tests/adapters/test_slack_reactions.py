"""👍/👎 on a Slack digest post, end to end: the digest posted through the fake Slack Web API,
reaction events dispatched through bolt as Socket Mode envelopes (wave2.md SR-1..SR-6, SX-1,
SX-5), and the next digest posted again through the fake."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack import SlackAdapter
from adapters.slack_payload import reaction_event
from bot.config import Settings
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from bot.taste_store import Outcome
from tests.adapters.fake_slack import FakeSlackApi, assert_valid_blocks, slack_api
from tests.adapters.test_slack import posting_adapter
from tests.conftest import NOW
from tests.fakes import Clock, Reacting, setup_channel
from tests.test_taste import DAY1, DAY2, DAY2_PAPERS, TOPIC, A, B, C

__all__ = ["slack_api"]

KEY = "slack:T0001:C0001"
BOT_USER = "UBOTT0001"  # what the fake's auth.test says the bot is


class Wired(Reacting):
    """The service (its `react` calls recorded), the Slack adapter and its outbox."""

    def __init__(self, service: BotService, adapter: SlackAdapter, outbox: Outbox) -> None:
        super().__init__(service)
        self.adapter, self.outbox = adapter, outbox

    async def dispatch(self, body: dict[str, Any], *, calls: int = 1) -> list[Outcome | None]:
        """Dispatch an event through bolt; wait until `calls` more reactions reached the core
        (bolt acks first and runs the listener after, SR-4)."""
        start = len(self.outcomes)
        request = AsyncBoltRequest(mode="socket_mode", body=body)
        response = await self.adapter.app.async_dispatch(request)
        assert response.status == 200
        return await self.reached(start, calls)

    async def dropped(self, body: dict[str, Any]) -> None:
        """Dispatch `body`, then a reaction the core is sure to see: only that one arrives."""
        request = AsyncBoltRequest(mode="socket_mode", body=body)
        assert (await self.adapter.app.async_dispatch(request)).status == 200
        marker = reaction(self.ts, "eyes", user="U9", event_id=f"EvMark{len(self.outcomes)}")
        assert await self.dispatch(marker) == [Outcome.IGNORED]

    ts = ""


@pytest.fixture
async def wired(store: PaperStore, slack_api: FakeSlackApi) -> AsyncIterator[Wired]:
    clock = Clock(DAY1)
    service = BotService(Settings.load(None, {}), store, clock=lambda: clock.now)
    adapter, outbox, _ = posting_adapter(service, slack_api)
    setup_channel(store, KEY, [TOPIC], NOW)
    store.upsert_many([A], NOW + timedelta(hours=1))
    report = await service.deliver_due(outbox, DAY1)
    assert report.messages == 1
    store.upsert_many(DAY2_PAPERS, DAY1 + timedelta(hours=1))
    clock.now = DAY2
    wired = Wired(service, adapter, outbox)
    wired.ts = slack_api.channel_messages["C0001"][0]["ts"]
    yield wired
    await adapter.stop()


def reaction(
    ts: str,
    name: str = "+1",
    *,
    user: str = "U2",
    kind: str = "reaction_added",
    event_id: str = "EvR1",
    event_ts: str = "1700000100.000100",
) -> dict[str, Any]:
    """A `reaction_added`/`reaction_removed` body as Slack documents it (SR-1)."""
    return {
        "token": "deprecated-verification-token",
        "team_id": "T0001",
        "api_app_id": "A0PAPERBOY",
        "event": {
            "type": kind,
            "user": user,
            "reaction": name,
            "item_user": BOT_USER,
            "item": {"type": "message", "channel": "C0001", "ts": ts},
            "event_ts": event_ts,
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1700000100,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T0001",
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }


def titles_in_order(post: dict[str, Any], *ids: str) -> list[str]:
    shown = str(post["blocks"])
    titles = {p.id: p.title for p in DAY2_PAPERS}
    return sorted(ids, key=lambda pid: shown.index(titles[pid][:30]))


async def test_a_thumbs_up_moves_a_similar_paper_up_in_the_next_digest(
    wired: Wired, slack_api: FakeSlackApi
) -> None:
    outcomes = await wired.dispatch(reaction(wired.ts, "+1::skin-tone-4"))
    assert outcomes == [Outcome.RECORDED]
    await wired.service.deliver_due(wired.outbox, DAY2)
    first, second = slack_api.posts()
    assert_valid_blocks(second)
    assert titles_in_order(second, B, C) == [B, C]  # by upvotes alone it is C, then B
    assert "like 1 paper 👍'd here" in str(second["blocks"])
    assert "👍'd" not in str(first["blocks"])


async def test_a_thumbs_down_moves_a_similar_paper_down(wired: Wired) -> None:
    before = await wired.service.ask(_invocation("digest"))
    assert [c.id for c in before.cards][:2] == ["2606.00030", C]
    await wired.dispatch(reaction(wired.ts, "thumbsdown"))
    after = await wired.service.ask(_invocation("digest"))
    ids = [c.id for c in after.cards]
    assert ids.index(C) < ids.index("2606.00030")


async def test_the_bots_own_reactions_never_reach_the_core(wired: Wired) -> None:
    await wired.dropped(reaction(wired.ts, user=BOT_USER, event_id="EvSelf"))  # SR-5
    assert wired.outcomes == [Outcome.IGNORED]  # only the marker
    shown = await wired.service.ask(_invocation("taste"))
    assert shown.title == "Nothing learned yet in this channel."


async def test_a_redelivered_event_counts_once_and_removal_undoes_it(wired: Wired) -> None:
    body = reaction(wired.ts)
    assert await wired.dispatch(body) == [Outcome.RECORDED]
    assert await wired.dispatch(copy.deepcopy(body)) == [Outcome.DUPLICATE]  # a retry (SX-1)
    again = reaction(wired.ts, event_id="EvR1-resent")  # a new id, the same event (SX-5)
    assert await wired.dispatch(again) == [Outcome.DUPLICATE]
    assert "1 👍 and 0 👎 from 1 person" in (await wired.service.ask(_invocation("taste"))).text
    removed = reaction(
        wired.ts, kind="reaction_removed", event_id="EvR2", event_ts="1700000200.000100"
    )
    assert await wired.dispatch(removed) == [Outcome.RECORDED]
    assert await wired.dispatch(reaction(wired.ts, event_id="EvR3")) == [Outcome.STALE]
    shown = await wired.service.ask(_invocation("taste"))
    assert shown.title == "Nothing learned yet in this channel."


def hostile(ts: str) -> list[dict[str, Any]]:
    base = reaction(ts)
    out: list[dict[str, Any]] = []
    for change in (
        lambda e: e.pop("item"),
        lambda e: e.update(item={"type": "file", "file": "F1"}),
        lambda e: e.update(item={"type": "file_comment", "file_comment": "Fc1"}),
        lambda e: e.update(item="C0001"),
        lambda e: e.update(item={"type": "message", "channel": ["C0001"], "ts": ts}),
        lambda e: e.update(reaction="+1" * 50_000),
        lambda e: e.update(reaction="x" * 50_000 + "::skin-tone-2"),
        lambda e: e.update(reaction=None),
        lambda e: e.pop("user"),
        lambda e: e["item"].update(ts="%"),
        lambda e: e["item"].update(ts=ts + "," + ts),
    ):
        body = copy.deepcopy(base)
        change(body["event"])
        body["event_id"] = f"EvHostile{len(out)}"
        out.append(body)
    return out


async def test_hostile_reaction_payloads_never_raise(
    wired: Wired, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    bodies = hostile(wired.ts)
    reaching = sum(reaction_event(body) is not None for body in bodies)  # e.g. huge names
    for body in bodies:
        request = AsyncBoltRequest(mode="socket_mode", body=body)
        assert (await wired.adapter.app.async_dispatch(request)).status == 200
    marker = reaction(wired.ts, "eyes", user="U9", event_id="EvLast")
    assert len(await wired.dispatch(marker, calls=reaching + 1)) == reaching + 1
    assert Outcome.RECORDED not in wired.outcomes
    assert None not in wired.outcomes  # nothing failed inside the core
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # On a message a person wrote (item_user, SR-7): dropped before the core.
    human = reaction(wired.ts, event_id="EvHuman")
    human["event"]["item_user"] = "U5"
    assert reaction_event(human, BOT_USER) is None
    assert reaction_event(human) is not None
    await wired.dropped(human)
    assert reaction_event(["not", "a", "body"]) is None
    assert reaction_event({"event": "reaction_added"}) is None
    # A nonsense event time: the reaction counts, at the time it came.
    for n, when in enumerate(("NaN", "inf", {"a": 1}, "1e999")):
        body = reaction(wired.ts, user=f"U{n}", event_id=f"EvTime{n}")
        body["event"]["event_ts"] = when
        assert await wired.dispatch(body) == [Outcome.RECORDED]


def _invocation(text: str) -> Any:
    from bot.messages import ChannelRef, Invocation, UserRef

    return Invocation(text, ChannelRef.parse(KEY), UserRef("slack", "U1"))
