"""The Slack adapter end to end against a fake Slack Web API on loopback.

Slash commands and buttons are dispatched in-process as Socket Mode envelopes and as real
signed HTTP requests to HTTP mode; digest posts go to the fake's `chat.postMessage`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from adapters.slack import LOOKING, SlackAdapter
from adapters.slack_payload import action_invocation, action_value, to_invocation
from adapters.slack_render import ACTION_ABSTRACT, ACTION_LIKE, ACTION_SHARE, ACTION_SUBSCRIBE
from bot.config import Settings
from bot.errors import DeliveryError, SourceError
from bot.messages import ChannelRef, PaperCard, Reply, ReplyKind
from bot.models import PaperIn
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from tests.adapters.fake_slack import FakeSlackApi, Scripted, assert_valid_blocks, slack_api
from tests.conftest import FIXTURES, NOW
from tests.fakes import Clock, paper

__all__ = ["slack_api"]  # the fixture, imported for pytest

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NASTY = "<!channel> <@U123> <https://evil|click>"
SLACK_FIXTURES = FIXTURES / "slack"


PAPERS = [
    paper(
        "2305.18290",
        "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
        "We introduce Direct Preference Optimization (DPO), a stable alternative to RLHF. "
        + "It needs no reward model. " * 40,
        authors=["Rafael Rafailov", "Archit Sharma", "Eric Mitchell", "Stefano Ermon"],
        upvotes=120,
        hf_daily_date=NOW.date(),
        published_at=NOW - timedelta(days=1),
        categories=["cs.LG", "cs.CL"],
        github_repo="https://github.com/eric-mitchell/direct-preference-optimization",
        ai_summary="DPO aligns language models with preferences without RL.",
    ),
    paper(
        "2401.00001",
        f"Preference tuning {NASTY} without reinforcement learning",
        "We study direct preference optimization for small models.",
        authors=["Ada Lovelace"],
        upvotes=5,
        hf_daily_date=NOW.date() - timedelta(days=3),
        published_at=NOW - timedelta(days=3),
    ),
    paper(
        "2402.00002",
        "Diffusion models for protein design",
        "A diffusion model.",
        published_at=NOW - timedelta(days=20),
    ),
]


def load(name: str, **replace: str) -> dict[str, Any]:
    text = (SLACK_FIXTURES / name).read_text()
    for key, value in replace.items():
        text = text.replace(key, value)
    return json.loads(text)


def settings(fake: FakeSlackApi, *, mode: str = "socket", **secrets: str) -> Settings:
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test"}
    env.update(secrets)
    base = Settings.load(None, {k: v for k, v in env.items() if v})
    return base.model_copy(
        update={
            "slack": base.slack.model_copy(
                update={"mode": mode, "api_base_url": fake.base_url, "host": "127.0.0.1"}
            )
        }
    )


class FakeRemote:
    """A remote source that knows one extra paper (and counts lookups)."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def lookup_paper(self, paper_id: str) -> PaperIn | None:
        self.lookups.append(paper_id)
        if paper_id == "2501.99999":
            return paper(
                "2501.99999", "A paper fetched on demand", "Fetched abstract.", published_at=NOW
            )
        raise SourceError("arXiv answered 503")

    async def search_remote(self, query: str, limit: int) -> list[PaperIn]:
        del query, limit  # knows no other papers
        return []


class Sleeps:
    """An injected clock and sleep: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def posting_adapter(service: BotService, fake: FakeSlackApi) -> tuple[SlackAdapter, Outbox, Sleeps]:
    """A Slack adapter on the fake API with an injected clock, wired as the service's outbox
    (digests and reconciliation go through it)."""
    sleeps = Sleeps()
    adapter = SlackAdapter(service, settings(fake), sleep=sleeps.sleep, monotonic=sleeps.monotonic)
    outbox = service.outbox = Outbox({"slack": adapter})
    return adapter, outbox, sleeps


@pytest.fixture
async def wired(
    store: PaperStore, slack_api: FakeSlackApi
) -> AsyncIterator[tuple[BotService, SlackAdapter, Outbox, Clock]]:
    """The sample papers, a service on a settable clock (at NOW), and its Slack adapter on the
    fake API as its outbox; stopped after."""
    store.upsert_many(PAPERS, NOW - timedelta(hours=1))
    clock = Clock(NOW)
    service = BotService(Settings.load(None, {}), store, clock=clock)
    adapter, outbox, _ = posting_adapter(service, slack_api)
    yield service, adapter, outbox, clock
    await adapter.stop()


@asynccontextmanager
async def slack_outbox(
    store: PaperStore, fake: FakeSlackApi
) -> AsyncIterator[tuple[BotService, Outbox, Sleeps]]:
    """A service on `store` at NOW posting through the fake Slack API (`posting_adapter`);
    the adapter is stopped after."""
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    adapter, outbox, sleeps = posting_adapter(service, fake)
    try:
        yield service, outbox, sleeps
    finally:
        await adapter.stop()


@pytest.fixture
def service(store: PaperStore) -> BotService:
    store.upsert_many(PAPERS, NOW - timedelta(hours=1))
    return BotService(Settings.load(None, {}), store, clock=lambda: NOW)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def adapter(
    service: BotService, slack_api: FakeSlackApi, sleeps: Sleeps
) -> AsyncIterator[SlackAdapter]:
    slack = SlackAdapter(
        service, settings(slack_api), sleep=sleeps.sleep, monotonic=sleeps.monotonic
    )
    yield slack
    await slack.stop()


async def command(
    adapter: SlackAdapter,
    fake: FakeSlackApi,
    text: str,
    *,
    team: str = "T0001",
    channel: str = "C0001",
    url: str = "r1",
) -> tuple[int, dict[str, Any]]:
    """`/papers <text>` as a Socket Mode envelope; returns the ack's status and JSON."""
    body = load("slash_command.json", RESPONSE_URL=fake.response_url(url))
    body.update(text=text, team_id=team, channel_id=channel)
    response = await adapter.app.async_dispatch(AsyncBoltRequest(mode="socket_mode", body=body))
    ack = json.loads(response.body) if response.body else {}
    if "blocks" in ack:
        assert_valid_blocks(ack)
    return response.status, ack


async def click(
    adapter: SlackAdapter,
    fake: FakeSlackApi,
    action_id: str,
    value: str,
    *,
    url: str = "a1",
    team: str = "T0001",
) -> list[dict[str, Any]]:
    body = load("block_actions.json", RESPONSE_URL=fake.response_url(url))
    body["actions"][0].update(action_id=action_id, value=value)
    body["team"]["id"] = team
    body["user"]["team_id"] = team
    response = await adapter.app.async_dispatch(AsyncBoltRequest(mode="socket_mode", body=body))
    assert response.status == 200
    posts = await fake.wait_for_response(url)
    for post in posts:
        assert_valid_blocks(post)
    return posts


def shown(message: Mapping[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


# ------------------------------------------------------------------------ slash commands


def test_to_invocation_keys_the_channel_by_workspace() -> None:
    body = load("slash_command.json", RESPONSE_URL="x")
    inv = to_invocation(body)
    assert inv.channel == ChannelRef("slack", "T0001", "C0001")
    assert inv.channel.key == "slack:T0001:C0001"
    assert (inv.text, inv.user.user_id, inv.user.name) == ("dpo", "U0001", "ada")
    with pytest.raises(ValueError):
        to_invocation({"text": "dpo"})


async def test_search_is_answered_in_the_ack_ephemeral_with_buttons(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    status, ack = await command(adapter, slack_api, "dpo")
    assert status == 200
    assert ack["response_type"] == "ephemeral"
    blocks = shown(ack)
    assert "Direct Preference Optimization" in blocks
    assert "https://arxiv.org/abs/2305.18290" in blocks
    assert "&lt;!channel&gt;" in blocks and "<!channel>" not in blocks
    actions = [b for b in ack["blocks"] if b["type"] == "actions"][-1]["elements"]
    assert {e["action_id"] for e in actions} == {ACTION_SHARE, ACTION_SUBSCRIBE}
    assert slack_api.responses == {}  # nothing else went out: the ack was the answer


async def test_every_command_acks_with_valid_blocks(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    for text in (
        "",
        "help",
        "help schedule",
        "top week",
        "2305.18290",
        "list",
        "status",
        "subscribe dpo",
        "schedule daily 09:00 Europe/Berlin",
        "unsubscribe 1",
        'author:"',
        "unsubscribe nothing",
        "top year",
        NASTY,
    ):
        status, ack = await command(adapter, slack_api, text)
        assert status == 200, text
        assert ack.get("blocks") and ack.get("text"), text


async def test_subscribe_is_confirmed_in_channel_and_stored_per_workspace(
    adapter: SlackAdapter, slack_api: FakeSlackApi, service: BotService
) -> None:
    _, ack = await command(adapter, slack_api, "subscribe dpo")
    assert ack["response_type"] == "in_channel"
    assert "Subscribed this channel to dpo" in shown(ack)
    assert [s.query for s in service.store.subscriptions("slack:T0001:C0001")] == ["dpo"]


async def test_workspaces_never_see_or_change_each_others_subscriptions(
    adapter: SlackAdapter, slack_api: FakeSlackApi, service: BotService
) -> None:
    await command(adapter, slack_api, "subscribe dpo", team="T0001")
    # Same channel id in another workspace: a different channel.
    _, listing = await command(adapter, slack_api, "list", team="T0002")
    assert "1. dpo" not in shown(listing) and "No topics yet" in shown(listing)
    _, refused = await command(adapter, slack_api, "unsubscribe dpo", team="T0002")
    assert "does not follow dpo" in shown(refused)
    assert [s.query for s in service.store.subscriptions("slack:T0001:C0001")] == ["dpo"]
    assert service.store.subscriptions("slack:T0002:C0001") == []


async def test_a_network_lookup_acks_at_once_then_answers_via_response_url(
    store: PaperStore, slack_api: FakeSlackApi
) -> None:
    store.upsert_many(PAPERS, NOW - timedelta(hours=1))
    remote = FakeRemote()
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW, remote=remote)
    adapter = SlackAdapter(service, settings(slack_api))
    try:
        _, ack = await command(adapter, slack_api, "2501.99999", url="slow")
        assert ack == {"text": LOOKING, "response_type": "ephemeral"}
        [answer] = await slack_api.wait_for_response("slow")
        assert answer["replace_original"] is False
        assert "A paper fetched on demand" in shown(answer)
        assert "Fetched abstract." in shown(answer)
        assert remote.lookups == ["2501.99999"]
        # A paper the store has is answered in the ack, without the network.
        _, ack = await command(adapter, slack_api, "2305.18290", url="fast")
        assert "Direct Preference Optimization" in shown(ack)
        assert remote.lookups == ["2501.99999"]
        # A failing lookup is explained, still through the response_url.
        _, ack = await command(adapter, slack_api, "2501.11111", url="fail")
        assert ack["text"] == LOOKING
        [answer] = await slack_api.wait_for_response("fail")
        assert "looking it up failed" in answer["text"]
    finally:
        await adapter.stop()


# ------------------------------------------------------------------------ buttons


async def test_share_posts_the_results_for_the_whole_channel(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    [post] = await click(adapter, slack_api, ACTION_SHARE, "dpo")
    assert post["response_type"] == "in_channel"
    assert "Direct Preference Optimization" in shown(post)
    assert ACTION_SHARE not in shown(post) and ACTION_SUBSCRIBE not in shown(post)
    assert "shared by ada" in shown(post)


async def test_subscribe_button_subscribes_this_channel(
    adapter: SlackAdapter, slack_api: FakeSlackApi, service: BotService
) -> None:
    [post] = await click(adapter, slack_api, ACTION_SUBSCRIBE, "dpo", team="T0009")
    assert "Subscribed this channel to dpo" in shown(post)
    assert [s.query for s in service.store.subscriptions("slack:T0009:C0001")] == ["dpo"]


async def test_abstract_button_shows_the_full_abstract_to_the_clicker(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    [post] = await click(adapter, slack_api, f"{ACTION_ABSTRACT}_1", "2305.18290")
    assert post["response_type"] == "ephemeral"
    assert shown(post).count("It needs no reward model.") == 40  # all of it, not a blurb


def like_buttons(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"].startswith(ACTION_LIKE)
    ]


async def test_every_card_has_a_more_like_this_button_that_answers_the_clicker(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    _, ack = await command(adapter, slack_api, "preference")
    buttons = like_buttons(ack)
    ids = [b["value"] for b in buttons]
    cards = [b["accessory"]["value"] for b in ack["blocks"] if "accessory" in b]
    assert ids == cards and set(ids) == {"2305.18290", "2401.00001"}  # one under each card
    assert len({b["action_id"] for b in buttons}) == len(buttons)  # unique in the message
    _, detail = await command(adapter, slack_api, "2305.18290", url="r2")
    assert [b["value"] for b in like_buttons(detail)] == ["2305.18290"]

    dpo = buttons[ids.index("2305.18290")]
    [post] = await click(adapter, slack_api, dpo["action_id"], dpo["value"])
    assert post["response_type"] == "ephemeral"
    assert "Papers like Direct Preference Optimization" in shown(post)
    assert "Preference tuning" in shown(post)  # the nearest paper
    assert "2305.18290" not in [b["value"] for b in like_buttons(post)]  # not itself
    assert slack_api.calls_to("chat.postMessage") == []  # nothing went to the channel


@pytest.mark.parametrize(
    "value",
    [
        "",
        "dpo",
        "subscribe dpo",
        "2305.18290 since:1d",
        "2305.18290\n",
        "https://arxiv.org/abs/2305.18290",
        "<!channel>",
        "2" * 5000,
    ],
)
@pytest.mark.parametrize("action", [ACTION_LIKE, ACTION_ABSTRACT])
async def test_a_paper_button_value_that_is_not_an_arxiv_id_is_refused(
    adapter: SlackAdapter, slack_api: FakeSlackApi, service: BotService, value: str, action: str
) -> None:
    [post] = await click(adapter, slack_api, f"{action}_1", value, team="T0007")
    assert post["response_type"] == "ephemeral"
    assert "could not read that button" in shown(post)
    assert service.store.subscriptions("slack:T0007:C0001") == []


@pytest.mark.parametrize(
    ("action", "value"),
    [
        (ACTION_SHARE, "dpo"),
        (ACTION_SUBSCRIBE, "dpo"),
        (f"{ACTION_ABSTRACT}_1", "2305.18290"),
        (f"{ACTION_LIKE}_1", "2305.18290"),
    ],
)
async def test_a_click_without_team_or_user_is_answered_not_dropped(
    adapter: SlackAdapter, slack_api: FakeSlackApi, service: BotService, action: str, value: str
) -> None:
    # A payload missing what Slack documents (no team, the user without id) gets the one
    # line "could not read that button", shown to the clicker only; nothing is changed.
    body = load("block_actions.json", RESPONSE_URL=slack_api.response_url("m1"))
    body["actions"][0].update(action_id=action, value=value)
    del body["team"]
    body["user"] = {"name": "ada"}
    response = await adapter.app.async_dispatch(AsyncBoltRequest(mode="socket_mode", body=body))
    assert response.status == 200
    [post] = await slack_api.wait_for_response("m1")
    assert post["response_type"] == "ephemeral"
    assert "could not read that button" in shown(post)
    assert service.store.subscriptions("slack:T0001:C0001") == []
    assert slack_api.calls_to("chat.postMessage") == []


# ------------------------------------------------------------------------ HTTP mode


def signed(body: str, *, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


@pytest.fixture
async def http_adapter(service: BotService, slack_api: FakeSlackApi) -> AsyncIterator[SlackAdapter]:
    slack = SlackAdapter(
        service, settings(slack_api, mode="http", SLACK_SIGNING_SECRET=SECRET, SLACK_APP_TOKEN="")
    )
    await slack.serve_http("127.0.0.1", 0)
    yield slack
    await slack.stop()


async def test_http_mode_answers_signed_commands_and_rejects_the_rest(
    http_adapter: SlackAdapter, slack_api: FakeSlackApi, service: BotService
) -> None:
    url = f"http://127.0.0.1:{http_adapter.http_port}/slack/events"
    form = load("slash_command.json", RESPONSE_URL=slack_api.response_url())
    form["text"] = "subscribe dpo"
    body = urlencode(form)
    stale = signed(body, age=301)
    forged = signed(body, secret="not-the-secret")
    tampered_body = body.replace("dpo", "rlhf")
    async with aiohttp.ClientSession() as http:
        for headers, data in (
            ({"Content-Type": "application/x-www-form-urlencoded"}, body),  # missing headers
            (forged, body),
            (stale, body),
            (signed(body), tampered_body),  # one changed byte after signing
        ):
            async with http.post(url, data=data, headers=headers) as response:
                assert response.status == 401
                assert await response.json() == {"error": "invalid request"}
        # Nothing of those reached the core.
        assert service.store.subscriptions("slack:T0001:C0001") == []
        async with http.post(url, data=body, headers=signed(body)) as response:
            assert response.status == 200
            ack = await response.json()
        async with http.get(url.replace("/slack/events", "/healthz")) as health:
            assert health.status == 200
    assert_valid_blocks(ack)
    assert ack["response_type"] == "in_channel"
    assert [s.query for s in service.store.subscriptions("slack:T0001:C0001")] == ["dpo"]


async def test_http_mode_routes_buttons_like_socket_mode(
    http_adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    url = f"http://127.0.0.1:{http_adapter.http_port}/slack/events"
    payload = load("block_actions.json", RESPONSE_URL=slack_api.response_url("h1"))
    payload["actions"][0].update(action_id=ACTION_SHARE, value="dpo")
    body = urlencode({"payload": json.dumps(payload)})
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers=signed(body)) as response,
    ):
        assert response.status == 200
    [post] = await slack_api.wait_for_response("h1")
    assert_valid_blocks(post)
    assert post["response_type"] == "in_channel"


# ------------------------------------------------------------------------ digest posts


def digest(n: int = 3, **kw: Any) -> Reply:
    cards = tuple(
        PaperCard(
            id=f"2401.{i:05d}",
            title=f"Paper {i} {NASTY}",
            url=f"https://arxiv.org/abs/2401.{i:05d}",
            abstract="abc " * 400,
            matched_topics=("dpo",),
        )
        for i in range(1, n + 1)
    )
    return Reply(kind=ReplyKind.DIGEST, title="New papers on your topics", cards=cards, **kw)


CHANNEL = ChannelRef("slack", "T0001", "C0001")


async def test_send_posts_blocks_with_metadata_and_returns_the_ts(
    adapter: SlackAdapter, slack_api: FakeSlackApi
) -> None:
    ref = await adapter.send(CHANNEL, digest(), idempotency_key="run-7:slack:T0001:C0001")
    [call] = slack_api.calls_to("chat.postMessage")
    assert ref == f"C0001:{1700000000.000001:.6f}"
    assert call.token == "xoxb-test"
    assert call.body["channel"] == "C0001"
    assert call.body["metadata"] == {
        "event_type": "paperboy_digest",
        "event_payload": {
            "idempotency_key": "run-7:slack:T0001:C0001",
            "channel": "slack:T0001:C0001",
        },
    }
    assert_valid_blocks(call.body)
    assert "Paper 3" in shown(call.body) and "<!channel>" not in json.dumps(call.body)
    assert "paperboy_share" not in shown(call.body)


async def test_a_long_digest_continues_in_the_thread_of_the_first_post(
    adapter: SlackAdapter, slack_api: FakeSlackApi, sleeps: Sleeps
) -> None:
    ref = await adapter.send(CHANNEL, digest(40), idempotency_key="k")
    posts = slack_api.posts()
    assert len(posts) > 1
    first_ts = ref.split(":", 1)[1]
    assert "thread_ts" not in posts[0]
    assert all(p["thread_ts"] == first_ts for p in posts[1:])
    assert all("continued" in p["text"] for p in posts[1:])
    for post in posts:
        assert_valid_blocks(post)
    # About one post per second in a channel: the continuations waited.
    assert sleeps.slept and all(abs(s - 1.0) < 1e-9 for s in sleeps.slept)
    assert len(sleeps.slept) == len(posts) - 1


async def test_posts_to_one_channel_are_paced_but_other_channels_are_not(
    adapter: SlackAdapter, slack_api: FakeSlackApi, sleeps: Sleeps
) -> None:
    await adapter.send(CHANNEL, digest(1), idempotency_key="a")
    await adapter.send(ChannelRef("slack", "T0001", "C0002"), digest(1), idempotency_key="b")
    assert sleeps.slept == []
    sleeps.now += 0.25
    await adapter.send(CHANNEL, digest(1), idempotency_key="c")
    assert sleeps.slept == [pytest.approx(0.75)]
    assert len(slack_api.posts()) == 3


@pytest.mark.parametrize(
    ("scripted", "ambiguous", "gone", "retry_after"),
    [
        (
            Scripted(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "7"}
            ),
            False,
            False,
            7.0,
        ),
        (Scripted({"ok": False, "error": "not_in_channel"}), False, True, None),
        (Scripted({"ok": False, "error": "channel_not_found"}), False, True, None),
        (Scripted({"ok": False, "error": "is_archived"}), False, True, None),
        (Scripted({"ok": False, "error": "token_revoked"}), False, True, None),
        (Scripted({"ok": False, "error": "invalid_blocks"}), False, False, None),
        (Scripted({"ok": False, "error": "fatal_error"}, status=500), True, False, None),
        (Scripted({}, status=503), True, False, None),
        (Scripted(drop=True), True, False, None),
    ],
    ids=[
        "429",
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "token_revoked",
        "invalid_blocks",
        "500",
        "503",
        "dropped",
    ],
)
async def test_send_outcomes_map_to_delivery_errors_and_are_never_resent(
    adapter: SlackAdapter,
    slack_api: FakeSlackApi,
    scripted: Scripted,
    ambiguous: bool,
    gone: bool,
    retry_after: float | None,
) -> None:
    slack_api.script("chat.postMessage", scripted)
    with pytest.raises(DeliveryError) as caught:
        await adapter.send(CHANNEL, digest(1), idempotency_key="k")
    assert (caught.value.ambiguous, caught.value.gone, caught.value.retry_after) == (
        ambiguous,
        gone,
        retry_after,
    )
    # Exactly one request reached Slack: no SDK retry, whatever happened.
    assert len(slack_api.calls_to("chat.postMessage")) == 1


async def test_a_timeout_after_sending_is_ambiguous(
    adapter: SlackAdapter, slack_api: FakeSlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.slack_post.POST_TIMEOUT", 1)
    slack_api.script("chat.postMessage", Scripted(delay=1.5))
    with pytest.raises(DeliveryError) as caught:
        await adapter.send(CHANNEL, digest(1), idempotency_key="k")
    assert caught.value.ambiguous
    assert len(slack_api.calls_to("chat.postMessage")) == 1


async def test_unreachable_slack_is_a_plain_retry(
    service: BotService, slack_api: FakeSlackApi
) -> None:
    config = settings(slack_api)
    closed = config.model_copy(
        update={
            "slack": config.slack.model_copy(update={"api_base_url": "http://127.0.0.1:9/api/"})
        }
    )
    adapter = SlackAdapter(service, closed)
    try:
        with pytest.raises(DeliveryError) as caught:
            await adapter.send(CHANNEL, digest(1), idempotency_key="k")
        assert not caught.value.ambiguous and not caught.value.gone
    finally:
        await adapter.stop()


async def test_a_429_on_a_continuation_waits_and_posts_it_once(
    adapter: SlackAdapter, slack_api: FakeSlackApi, sleeps: Sleeps
) -> None:
    slack_api.script(
        "chat.postMessage",
        Scripted({"ok": True, "ts": "1700000000.999999"}),  # the first message
        Scripted({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "2"}),
    )
    await adapter.send(CHANNEL, digest(40), idempotency_key="k")
    assert 2.0 in sleeps.slept
    texts = [p["text"] for p in slack_api.posts()]
    assert texts.count(texts[1]) == 2  # the rate-limited part, then its one retry


# ------------------------------------------------------------------------ OAuth


# slack_sdk 3.48 builds aiohttp.BasicAuth for oauth.v2.access, deprecated in aiohttp 3.14.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_oauth_install_tokens_per_workspace_and_uninstall(
    service: BotService, slack_api: FakeSlackApi
) -> None:
    config = settings(
        slack_api,
        mode="http",
        SLACK_BOT_TOKEN="",
        SLACK_APP_TOKEN="",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_CLIENT_ID="111.222",
        SLACK_CLIENT_SECRET="client-secret",
    )
    adapter = SlackAdapter(service, config)
    await adapter.serve_http("127.0.0.1", 0)
    root = f"http://127.0.0.1:{adapter.http_port}"
    try:
        async with aiohttp.ClientSession() as http:
            for team in ("T0001", "T0002"):
                async with http.get(f"{root}/slack/install", allow_redirects=False) as page:
                    assert page.status in (200, 302)
                    html = await page.text()
                    assert "slack.com/oauth/v2/authorize" in html + page.headers.get("Location", "")
                    state = page.cookies["slack-app-oauth-state"].value
                # The state cookie is `Secure`: a browser on https sends it back.
                cookie = {"Cookie": f"slack-app-oauth-state={state}"}
                async with http.get(
                    f"{root}/slack/oauth_redirect?code=code-{team}&state={state}", headers=cookie
                ) as done:
                    assert done.status == 200, await done.text()
                # A state is single-use.
                async with http.get(
                    f"{root}/slack/oauth_redirect?code=code-{team}&state={state}", headers=cookie
                ) as again:
                    assert again.status != 200
            # Each workspace's channels are posted with that workspace's token.
            await adapter.send(ChannelRef("slack", "T0002", "C1"), digest(1), idempotency_key="a")
            await adapter.send(ChannelRef("slack", "T0001", "C1"), digest(1), idempotency_key="b")
            assert [c.token for c in slack_api.calls_to("chat.postMessage")] == [
                "xoxb-T0002",
                "xoxb-T0001",
            ]
            # Commands from T0002 are authorized with T0002's installation.
            form = load("slash_command.json", RESPONSE_URL=slack_api.response_url())
            form.update(team_id="T0002", text="subscribe rlhf")
            body = urlencode(form)
            async with http.post(f"{root}/slack/events", data=body, headers=signed(body)) as resp:
                assert resp.status == 200
                assert "Subscribed this channel to rlhf" in json.dumps(await resp.json())
            # (bolt checks the token it found: the last auth.test is T0002's)
            assert slack_api.calls_to("auth.test")[-1].token == "xoxb-T0002"
            assert service.store.subscriptions("slack:T0001:C0001") == []
            service.store.ensure_channel("slack:T0002:C1", NOW)
            service.store.ensure_channel("slack:T0001:C1", NOW)
            event = json.dumps(load("app_uninstalled.json"))
            headers = {**signed(event), "Content-Type": "application/json"}
            async with http.post(f"{root}/slack/events", data=event, headers=headers) as resp:
                assert resp.status == 200
        store = adapter.installation_store
        assert store is not None
        # Events are acked first and handled after: wait (bounded) for the handler.
        for _ in range(200):
            if await store.async_find_bot(enterprise_id=None, team_id="T0002") is None:
                break
            await asyncio.sleep(0.01)
        assert await store.async_find_bot(enterprise_id=None, team_id="T0002") is None
        assert await store.async_find_bot(enterprise_id=None, team_id="T0001") is not None
        t2 = service.store.channel("slack:T0002:C1")
        t1 = service.store.channel("slack:T0001:C1")
        assert t2 is not None and t2.paused_reason and "uninstalled" in t2.paused_reason
        assert t1 is not None and t1.paused_reason is None
        with pytest.raises(DeliveryError) as caught:
            await adapter.send(ChannelRef("slack", "T0002", "C1"), digest(1), idempotency_key="c")
        assert caught.value.gone
    finally:
        await adapter.stop()


async def test_the_runtime_builds_the_slack_adapter_from_settings(
    service: BotService, slack_api: FakeSlackApi
) -> None:
    from bot.runtime import build_adapters

    adapters = build_adapters(settings(slack_api), service)
    assert isinstance(adapters["slack"], SlackAdapter)
    await adapters["slack"].stop()


def test_the_manifest_matches_what_the_adapter_needs() -> None:
    from adapters.slack import SCOPES

    manifest = (Path(__file__).resolve().parents[2] / "slack-manifest.yml").read_text()
    lines = [line.split("#")[0].strip() for line in manifest.splitlines()]
    assert f"- command: {Settings.load(None, {}).slack.command}" in lines
    bot_scopes = lines[lines.index("bot:") + 1 : lines.index("settings:")]
    assert {s.removeprefix("- ") for s in bot_scopes if s} == set(SCOPES)
    events = lines[lines.index("bot_events:") + 1 : lines.index("interactivity:")]
    assert {e.removeprefix("- ") for e in events if e} == {
        "app_uninstalled",
        "tokens_revoked",
        "reaction_added",
        "reaction_removed",
    }
    assert "socket_mode_enabled: true" in lines
    assert "is_enabled: true" in lines  # interactivity: the buttons
    assert "/slack/oauth_redirect" in manifest and "/slack/events" in manifest


async def test_socket_mode_connects_and_acks_envelopes_with_the_answer(
    service: BotService, slack_api: FakeSlackApi
) -> None:
    adapter = SlackAdapter(service, settings(slack_api))
    await adapter.start()
    try:
        [opened] = slack_api.calls_to("apps.connections.open")
        assert opened.token == "xapp-test"
        payload = load("slash_command.json", RESPONSE_URL=slack_api.response_url())
        payload["text"] = "subscribe dpo"
        ack = await slack_api.socket_send(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "payload": payload,
                "accepts_response_payload": True,
            }
        )
        assert_valid_blocks(ack["payload"])
        assert ack["payload"]["response_type"] == "in_channel"
        assert "Subscribed this channel to dpo" in shown(ack["payload"])
        assert [s.query for s in service.store.subscriptions("slack:T0001:C0001")] == ["dpo"]
    finally:
        await adapter.stop()


async def test_revoked_bot_token_pauses_only_that_workspaces_channels(
    adapter: SlackAdapter, service: BotService
) -> None:
    service.store.ensure_channel("slack:T0001:C0001", NOW)
    service.store.ensure_channel("slack:T0002:C0001", NOW)
    event = load("app_uninstalled.json")
    event.update(
        team_id="T0001", event={"type": "tokens_revoked", "tokens": {"bot": ["UBOTT0001"]}}
    )
    event["authorizations"][0]["team_id"] = "T0001"
    response = await adapter.app.async_dispatch(AsyncBoltRequest(mode="socket_mode", body=event))
    assert response.status == 200
    for _ in range(200):  # events are acked first, handled after
        mine = service.store.channel("slack:T0001:C0001")
        if mine is not None and mine.paused_reason:
            break
        await asyncio.sleep(0.01)
    mine = service.store.channel("slack:T0001:C0001")
    other = service.store.channel("slack:T0002:C0001")
    assert mine is not None and mine.paused_reason and "revoked" in mine.paused_reason
    assert other is not None and other.paused_reason is None


@pytest.mark.parametrize(
    "body",
    [
        {"actions": "x"},
        {"actions": [None]},
        {"actions": [["x"]]},
        {"actions": []},
        {"actions": [{"value": None}]},
        {"team": "T1", "channel": ["C1"], "user": "U1", "container": 5, "actions": [{}]},
    ],
)
def test_a_button_payload_of_another_shape_reads_as_nothing(body: dict[str, Any]) -> None:
    # A click whose payload is not what Slack documents gets "could not read that button"
    # from the handler, never an AttributeError after the ack.
    assert action_value(body) == ""
    with pytest.raises(ValueError, match="without team, channel or user"):
        action_invocation(body, "like 2305.18290")
