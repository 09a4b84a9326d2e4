"""Discord adapter, without a gateway or network: `/papers` callbacks driven with autospec'd
discord.py responses (a wrong keyword fails), the registration payload, and digest posts into
an autospec'd `PartialMessageable`."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, create_autospec

import aiohttp
import discord
import pytest

from adapters.discord import GUILD_REMOVED, DiscordAdapter, make_nonce
from adapters.discord_answer import ResultsView
from adapters.discord_commands import command_payload, timezone_choices, topic_choices
from bot.cli import main as cli_main
from bot.command_context import Example
from bot.commands import COMMANDS, CommandSpec, Option
from bot.config import DiscordSettings, Settings
from bot.errors import DeliveryError
from bot.messages import ChannelRef, PaperCard, Reply, ReplyKind, info
from bot.models import PaperIn
from bot.ports import Outbox
from bot.service import BotService
from bot.store import PaperStore
from tests.adapters.discord_limits import assert_within_limits, message_text
from tests.conftest import NOW
from tests.fakes import TestBot, paper

SNAPSHOT = Path(__file__).parent / "snapshots" / "discord_commands.json"
GUILD, CHANNEL, USER = 111111111111111111, 222222222222222222, 333333333333333333
KEY = f"discord:{GUILD}:{CHANNEL}"
NAME = re.compile(r"^[-_\w]{1,32}$")


# The test papers (`bot` fixture), one of them titled to ping everyone.
EVERYONE = paper(
    "2401.00001",
    "@everyone Preference tuning without reinforcement learning",
    "We study direct preference optimization for small models.",
    authors=["Ada Lovelace"],
    upvotes=5,
    published_at=NOW - timedelta(days=3),
)


class FakeRemote:
    """Remote sources: records when it was asked, so tests can check the ack came first."""

    def __init__(self, interaction: Any) -> None:
        self.interaction = interaction
        self.deferred_before_lookup: bool | None = None

    async def lookup_paper(self, paper_id: str) -> PaperIn | None:
        self.deferred_before_lookup = self.interaction.response.defer.await_count == 1
        return paper(paper_id, "A paper fetched on demand", "Fetched from the source.")

    async def search_remote(self, query: str, limit: int) -> list[PaperIn]:  # noqa: ARG002 - PaperLookup
        return []


@pytest.fixture
def service(bot: TestBot) -> BotService:
    bot.store.upsert_many([EVERYONE], NOW - timedelta(hours=1))
    return bot.service


def fake_channel() -> Any:
    channel = create_autospec(discord.PartialMessageable, instance=True)
    counter = iter(range(900, 10_000))
    channel.send.side_effect = lambda *_a, **_kw: SimpleNamespace(id=next(counter))
    return channel


@pytest.fixture
def channel() -> Any:
    return fake_channel()


@asynccontextmanager
async def discord_outbox(
    store: PaperStore, channel: Any
) -> AsyncIterator[tuple[BotService, Outbox]]:
    """A service on `store` at NOW and an outbox whose Discord adapter posts into `channel`
    (an autospec'd `PartialMessageable`); the adapter is stopped after."""
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    adapter = DiscordAdapter(service, token=None, channel_getter=lambda _id: channel)
    try:
        yield service, Outbox({"discord": adapter})
    finally:
        await adapter.stop()


@pytest.fixture
async def adapter(service: BotService, channel: Any) -> Any:
    got: list[int] = []

    def getter(channel_id: int) -> Any:
        got.append(channel_id)
        return channel

    adapter = DiscordAdapter(service, token=None, channel_getter=getter)
    adapter.channel_ids = got  # type: ignore[attr-defined]
    yield adapter
    await adapter.stop()


@pytest.fixture
async def poster(channel: Any) -> Any:
    """An adapter for posting only (no store behind it): the send tests."""
    adapter = DiscordAdapter(
        create_autospec(BotService, instance=True), token=None, channel_getter=lambda _id: channel
    )
    yield adapter
    await adapter.stop()


def interaction(*, guild_id: int | None = GUILD, manage: bool = True, user_id: int = USER) -> Any:
    """What the adapter reads of an interaction; responses are autospec'd discord.py objects."""
    return SimpleNamespace(
        guild_id=guild_id,
        channel_id=CHANNEL,
        user=SimpleNamespace(id=user_id, name="ada"),
        permissions=discord.Permissions(manage_channels=manage, send_messages=True),
        response=create_autospec(discord.InteractionResponse, instance=True),
        followup=create_autospec(discord.Webhook, instance=True),
    )


async def invoke(adapter: DiscordAdapter, name: str, inter: Any, **options: Any) -> None:
    """Run `/papers <name>` through the generated command's public callback."""
    command = adapter.group.get_command(name)
    assert isinstance(command, discord.app_commands.Command)
    await command.callback(inter, **options)  # type: ignore[call-arg]


def sent(mock: AsyncMock) -> list[dict[str, Any]]:
    messages = [dict(c.kwargs) for c in mock.await_args_list]
    for message in messages:
        assert_within_limits(message)
    return messages


# ------------------------------------------------------------------- registration


async def test_subcommands_are_generated_from_the_registry(adapter: DiscordAdapter) -> None:
    assert [c.name for c in adapter.group.commands] == list(COMMANDS)


async def test_a_command_added_to_the_registry_appears_on_discord(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def handler(_ctx: Any, _text: str) -> Reply:
        return info("preview")

    spec = CommandSpec(
        "preview",
        "Preview something.",
        "preview",
        (Example("preview", "preview"),),
        handler,
        (Option("what", "What to preview"),),
    )
    monkeypatch.setitem(COMMANDS, "preview", spec)
    [group] = command_payload()
    preview = next(o for o in group["options"] if o["name"] == "preview")
    assert preview["options"] == [
        {"type": 3, "name": "what", "description": "What to preview", "required": False}
    ]


def test_registration_payload_matches_the_snapshot() -> None:
    payload = command_payload()
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1 and review it"
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        "the /papers commands changed: review the diff, then UPDATE_SNAPSHOTS=1 pytest "
        f"{Path(__file__).name} and run `paperboy discord sync` after deploying"
    )


def test_registration_payload_is_within_discords_limits() -> None:
    payload = command_payload()
    assert len(payload) <= 100
    for command in payload:
        assert len(json.dumps(command)) <= 8000
        _check_command(command)
        subs = command["options"]
        assert 1 <= len(subs) <= 25
        for sub in subs:
            assert sub["type"] == 1
            _check_command(sub)
            options = sub["options"]
            assert len(options) <= 25
            required = [o["required"] for o in options]
            assert required == sorted(required, reverse=True), "required options come first"
            for option in options:
                _check_command(option)
                choices = option.get("choices", [])
                assert len(choices) <= 25
                assert not (choices and option.get("autocomplete"))
                for choice in choices:
                    assert 1 <= len(choice["name"]) <= 100 and len(choice["value"]) <= 100


def _check_command(item: dict[str, Any]) -> None:
    assert NAME.match(item["name"]) and item["name"] == item["name"].lower(), item["name"]
    assert 1 <= len(item["description"]) <= 100, item["description"]


def test_options_are_typed_with_choices_and_autocomplete() -> None:
    [group] = command_payload()
    subs = {s["name"]: {o["name"]: o for o in s["options"]} for s in group["options"]}
    assert subs["search"]["query"]["required"] is True
    assert [c["value"] for c in subs["top"]["period"]["choices"]] == ["day", "week", "month"]
    assert [c["value"] for c in subs["schedule"]["kind"]["choices"]] == [
        "daily",
        "weekdays",
        "weekly",
        "off",
    ]
    assert subs["schedule"]["timezone"]["autocomplete"] is True
    assert subs["unsubscribe"]["topic"]["autocomplete"] is True


def test_dry_run_prints_the_payload_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("DISCORD_TOKEN", "PAPERBOY_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    assert cli_main(["discord", "sync", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out) == command_payload()


async def test_starting_logs_in_but_never_syncs_commands(service: BotService) -> None:
    client = discord.Client(intents=discord.Intents(guilds=True))
    client.login = AsyncMock()  # type: ignore[method-assign]
    connected = asyncio.Event()

    async def connect(reconnect: bool = True) -> None:  # noqa: ARG001 - discord.py's signature
        connected.set()
        await asyncio.Event().wait()

    client.connect = connect  # type: ignore[method-assign]
    client.http.bulk_upsert_global_commands = AsyncMock()  # type: ignore[method-assign]
    client.http.bulk_upsert_guild_commands = AsyncMock()  # type: ignore[method-assign]
    adapter = DiscordAdapter(service, token="t0ken", client=client)
    await adapter.start()
    await asyncio.wait_for(connected.wait(), 1)
    client.login.assert_awaited_once_with("t0ken")
    client.http.bulk_upsert_global_commands.assert_not_awaited()
    client.http.bulk_upsert_guild_commands.assert_not_awaited()
    await adapter.stop()
    await adapter.stop()  # idempotent
    assert adapter.finished.is_set()


def test_intents_are_minimal_and_shards_switch_to_autosharded() -> None:
    from adapters.discord import build_client

    client = build_client(DiscordSettings())
    assert not client.intents.message_content and not client.intents.members
    assert client.intents.guilds
    sharded = build_client(DiscordSettings(shards=4))
    assert isinstance(sharded, discord.AutoShardedClient) and sharded.shard_count == 4


async def test_digests_go_through_a_partial_messageable_without_a_guild_cache() -> None:
    adapter = DiscordAdapter(create_autospec(BotService, instance=True), token=None)
    target = adapter.channel_getter(CHANNEL)
    assert isinstance(target, discord.PartialMessageable) and target.id == CHANNEL
    assert not adapter.client.guilds  # nothing cached, nothing needed


# ----------------------------------------------------------------------- commands


async def test_search_answers_at_once_privately_with_share_and_subscribe_buttons(
    adapter: DiscordAdapter,
) -> None:
    inter = interaction()
    await invoke(adapter, "search", inter, query="dpo")
    inter.response.defer.assert_not_awaited()
    inter.followup.send.assert_not_awaited()
    [message] = sent(inter.response.send_message)
    assert message["ephemeral"] is True
    assert "Direct Preference Optimization" in message_text(message)
    view = message["view"]
    assert isinstance(view, ResultsView)
    labels = [b.label for b in view.children]  # type: ignore[attr-defined]
    assert labels[:2] == ["Share", "Subscribe this channel"]
    assert labels[2:] == [f"More like {n}" for n in range(1, len(message["embeds"]) + 1)]

    # "Share" posts the same results publicly in the channel.
    click = interaction()
    await view.children[0].callback(click)
    [shared] = sent(click.response.send_message)
    assert shared["ephemeral"] is False
    assert message_text(shared) == message_text({**message, "view": None})

    # "Subscribe this channel" subscribes with the clicking user's permissions.
    click = interaction()
    await view.children[1].callback(click)
    [answer] = sent(click.response.send_message)
    assert "Subscribed this channel to dpo" in message_text(answer)
    assert [s.query for s in adapter.service.store.subscriptions(KEY)] == ["dpo"]


async def test_a_title_with_everyone_pings_nobody(adapter: DiscordAdapter) -> None:
    inter = interaction()
    await invoke(adapter, "search", inter, query="preference")
    [message] = sent(inter.response.send_message)  # allowed_mentions none is checked here
    shown = message_text(message)
    assert "Preference tuning" in shown and "@everyone" not in shown


async def test_a_lookup_that_needs_the_network_defers_first_then_follows_up(
    bot: TestBot,
) -> None:
    inter = interaction()
    remote = FakeRemote(inter)
    adapter = DiscordAdapter(bot.with_remote(remote).service, token=None)
    await invoke(adapter, "paper", inter, id="2501.12345")
    inter.response.defer.assert_awaited_once_with(ephemeral=False, thinking=True)
    assert remote.deferred_before_lookup is True
    inter.response.send_message.assert_not_awaited()
    [message] = sent(inter.followup.send)
    assert message["ephemeral"] is False
    assert "A paper fetched on demand" in message_text(message)


async def test_an_unexpected_error_still_gets_a_private_answer(adapter: DiscordAdapter) -> None:
    inter = interaction()
    inter.response.is_done.return_value = False
    error = discord.app_commands.AppCommandError("boom")
    await adapter.tree.on_error(inter, error)
    [message] = [c.kwargs for c in inter.response.send_message.await_args_list]
    assert message["ephemeral"] is True
    assert message["allowed_mentions"].to_dict() == {"parse": []}


async def test_an_answer_slower_than_the_ack_budget_is_deferred_then_followed_up(
    bot: TestBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    count = bot.store.count

    def slow_count() -> int:
        release.wait(10)  # a busy database: held until Discord has been acked
        return int(count())

    monkeypatch.setattr(bot.store, "count", slow_count)
    # The real budget is 2 s of Discord's 3.
    adapter = DiscordAdapter(bot.with_ack_budget(0.01).service, token=None)
    inter = interaction()
    inter.response.defer.side_effect = lambda **_kw: release.set()  # answer after the ack
    await invoke(adapter, "status", inter)
    inter.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    inter.response.send_message.assert_not_awaited()
    [message] = sent(inter.followup.send)
    assert message["ephemeral"] is True and "paperboy status" in message_text(message)


async def test_subscribe_needs_manage_channels(adapter: DiscordAdapter) -> None:
    inter = interaction(manage=False)
    await invoke(adapter, "subscribe", inter, query="dpo")
    [message] = sent(inter.response.send_message)
    assert message["ephemeral"] is True
    assert "Only people who can manage this channel" in message_text(message)
    assert adapter.service.store.subscriptions(KEY) == []

    inter = interaction(manage=True)
    await invoke(adapter, "subscribe", inter, query="dpo")
    [message] = sent(inter.response.send_message)
    assert message["ephemeral"] is False  # the channel sees what it now follows
    assert [s.query for s in adapter.service.store.subscriptions(KEY)] == ["dpo"]


async def test_manage_permission_can_be_switched_off(service: BotService) -> None:
    adapter = DiscordAdapter(service, token=None, settings=DiscordSettings(manage_permission=False))
    await invoke(adapter, "subscribe", interaction(manage=False), query="rlhf")
    assert [s.query for s in service.store.subscriptions(KEY)] == ["rlhf"]


async def test_direct_messages_are_their_own_channel(adapter: DiscordAdapter) -> None:
    inter = interaction(guild_id=None, manage=False)
    await invoke(adapter, "subscribe", inter, query="dpo")
    assert [s.query for s in adapter.service.store.subscriptions(f"discord:dm:{CHANNEL}")] == [
        "dpo"
    ]


async def test_schedule_options_become_the_text_grammar(adapter: DiscordAdapter) -> None:
    inter = interaction()
    await invoke(
        adapter, "schedule", inter, kind="weekly", day="mon", time="08:30", timezone="Europe/Berlin"
    )
    [message] = sent(inter.response.send_message)
    shown = message_text(message)
    assert "Digests come" in shown and "Mon" in shown and "08:30" in shown
    channel = adapter.service.store.channel(KEY)
    assert channel is not None and channel.timezone == "Europe/Berlin"


async def test_help_and_errors_are_answered_privately(adapter: DiscordAdapter) -> None:
    inter = interaction()
    await invoke(adapter, "help", inter)
    [message] = sent(inter.response.send_message)
    assert message["ephemeral"] is True and "/papers subscribe" in message_text(message)
    inter = interaction()
    await invoke(adapter, "top", inter, period=None)
    sent(inter.response.send_message)


async def test_unsubscribe_autocompletes_this_channels_topics(adapter: DiscordAdapter) -> None:
    for topic in ("dpo", "diffusion models", "rlhf"):
        adapter.service.store.subscribe(KEY, topic, NOW)
    adapter.service.store.subscribe("discord:1:2", "other channel", NOW)
    choices = await adapter.autocomplete_topics(interaction(), "d")
    assert [c.value for c in choices] == ["dpo", "diffusion models"]
    everything = await adapter.autocomplete_topics(interaction(), "")
    assert [c.name for c in everything] == ["1. dpo", "2. diffusion models", "3. rlhf"]
    long = topic_choices(["x" * 150], "")
    assert long[0].value == "1" and len(long[0].name) <= 100


async def test_the_generated_options_autocomplete_through_the_adapter(
    adapter: DiscordAdapter,
) -> None:
    """The option's Transformer (what discord.py asks while the user types) reaches the
    service: this channel's topics, and time zones."""
    adapter.service.store.subscribe(KEY, "dpo", NOW)
    unsubscribe = adapter.group.get_command("unsubscribe")
    schedule = adapter.group.get_command("schedule")
    assert isinstance(unsubscribe, discord.app_commands.Command)
    assert isinstance(schedule, discord.app_commands.Command)
    topic = inspect.signature(unsubscribe.callback).parameters["topic"].annotation
    zone = inspect.signature(schedule.callback).parameters["timezone"].annotation
    assert [c.value for c in await topic.autocomplete(interaction(), "")] == ["dpo"]
    assert (await zone.autocomplete(interaction(), "berl"))[0].value == "Europe/Berlin"
    kind = inspect.signature(schedule.callback).parameters["kind"].annotation
    assert [c.value for c in kind.choices] == ["daily", "weekdays", "weekly", "off"]


def test_timezone_autocomplete_is_filtered_and_capped() -> None:
    assert timezone_choices("berl")[0].value == "Europe/Berlin"
    assert timezone_choices("new_y")[0].value == "America/New_York"
    assert timezone_choices("new y")[0].value == "America/New_York"
    assert len(timezone_choices("a")) == 25
    assert timezone_choices("")[0].value == "UTC"
    assert timezone_choices("no such place ~~") == []


# ---------------------------------------------------------------------- outbound


# ------------------------------------------------------------------ More like this


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [item.custom_id for item in message["view"].children]


async def test_more_like_this_under_each_card_answers_only_the_clicker(
    adapter: DiscordAdapter,
) -> None:
    inter = interaction()
    await invoke(adapter, "search", inter, query="preference")
    [message] = sent(inter.response.send_message)
    likes = [b for b in message["view"].children if b.label.startswith("More like")]
    assert len(likes) == len(message["embeds"]) >= 2
    click = interaction()
    await likes[0].callback(click)
    [answer] = sent(click.response.send_message)
    assert answer["ephemeral"] is True
    first = message["embeds"][0].title.split(". ", 1)[1]
    assert message_text(answer).startswith(f"**Papers like {first[:40]}")
    assert first not in [e.title.split(". ", 1)[1] for e in answer["embeds"]]  # not itself


async def test_a_paper_in_detail_has_one_more_like_this_button(adapter: DiscordAdapter) -> None:
    inter = interaction()
    await invoke(adapter, "paper", inter, id="2305.18290")
    [message] = sent(inter.response.send_message)
    assert [b.item.label for b in message["view"].children] == ["More like this"]
    assert custom_ids(message) == ["paperboy:like:2305.18290"]


async def test_digest_cards_get_persistent_buttons_that_answer_after_a_restart(
    adapter: DiscordAdapter, channel: Any, service: BotService
) -> None:
    await adapter.send(ChannelRef.parse(KEY), digest(25), idempotency_key="d7")
    messages = sent(channel.send)
    assert [len(custom_ids(m)) for m in messages] == [10, 10, 5]  # one per card shown
    assert custom_ids(messages[0])[0] == "paperboy:like:2401.00000"
    assert all(m["view"].timeout is None for m in messages)  # persistent: no timeout

    # A click on an old post: discord.py rebuilds the button from its custom_id.
    fresh = DiscordAdapter(service, token=None)
    template = fresh.like_button.__discord_ui_compiled_template__
    match = template.fullmatch("paperboy:like:2305.18290")
    button = await fresh.like_button.from_custom_id(None, None, match)
    click = interaction()
    await button.callback(click)
    [answer] = sent(click.response.send_message)
    assert answer["ephemeral"] is True
    assert "Papers like Direct Preference Optimization" in message_text(answer)
    await fresh.stop()


@pytest.mark.parametrize(
    "custom_id",
    [
        "paperboy:like:",
        "paperboy:like:-",
        "paperboy:like:subscribe dpo",
        "paperboy:like:2305.18290 since:1d",
        "paperboy:like:https://arxiv.org/abs/2305.18290",
        "paperboy:like:@everyone",
    ],
)
async def test_a_button_id_that_is_not_an_arxiv_id_is_refused(
    adapter: DiscordAdapter, custom_id: str
) -> None:
    match = adapter.like_button.__discord_ui_compiled_template__.fullmatch(custom_id)
    button = await adapter.like_button.from_custom_id(None, None, match)
    click = interaction()
    await button.callback(click)
    [answer] = sent(click.response.send_message)
    assert answer["ephemeral"] is True
    assert "could not read that button" in message_text(answer)
    assert adapter.service.store.subscriptions(KEY) == []


def digest(n: int = 3) -> Reply:
    cards = tuple(
        PaperCard(id=f"2401.{i:05d}", title=f"Paper {i}", url=f"https://arxiv.org/abs/2401.{i:05d}")
        for i in range(n)
    )
    return Reply(kind=ReplyKind.DIGEST, title="Papers for this channel", cards=cards)


async def test_send_posts_through_rest_with_a_deterministic_nonce(
    poster: DiscordAdapter, channel: Any
) -> None:
    ref = await poster.send(ChannelRef.parse(KEY), digest(), idempotency_key="d42")
    assert ref == "900"
    [message] = sent(channel.send)
    assert message["nonce"] == "d42"
    assert [e.title for e in message["embeds"]] == ["1. Paper 0", "2. Paper 1", "3. Paper 2"]


async def test_a_long_digest_posts_several_messages_each_with_its_own_nonce(
    poster: DiscordAdapter, channel: Any
) -> None:
    ref = await poster.send(ChannelRef.parse(KEY), digest(25), idempotency_key="d42")
    messages = sent(channel.send)
    assert len(messages) == 3 and ref == "900,901,902"
    nonces = [m["nonce"] for m in messages]
    assert len(set(nonces)) == 3 and all(len(n) <= 25 for n in nonces)
    assert nonces == [make_nonce("d42", i) for i in range(3)]  # same after a restart


def test_nonces_fit_discords_25_characters() -> None:
    long_key = "delivery:discord:111111111111111111:222222222222222222:2305.18290"
    assert len(make_nonce(long_key)) == 25
    assert make_nonce(long_key) == make_nonce(long_key) != make_nonce(long_key, 1)


def _http_error(cls: type[discord.HTTPException], status: int, code: int, **headers: str) -> Any:
    response = SimpleNamespace(status=status, reason="x", headers=headers)
    return cls(response, {"code": code, "message": "nope"})


@pytest.mark.parametrize(
    "error,expected",
    [
        (_http_error(discord.Forbidden, 403, 50001), {"gone": True}),  # Missing Access
        (_http_error(discord.Forbidden, 403, 50013), {"gone": True}),  # Missing Permissions
        (_http_error(discord.NotFound, 404, 10003), {"gone": True}),  # Unknown Channel
        (
            _http_error(discord.HTTPException, 429, 0, **{"Retry-After": "7.5"}),
            {"retry_after": 7.5},
        ),
        (discord.RateLimited(42.0), {"retry_after": 42.0}),
        (_http_error(discord.DiscordServerError, 503, 0), {"ambiguous": True}),
        (TimeoutError(), {"ambiguous": True}),
        (aiohttp.ServerDisconnectedError(), {"ambiguous": True}),
        (_http_error(discord.HTTPException, 400, 50035), {}),  # rejected: nothing was created
    ],
)
async def test_send_failures_map_to_delivery_errors(
    poster: DiscordAdapter, channel: Any, error: BaseException, expected: dict[str, Any]
) -> None:
    channel.send.side_effect = error
    with pytest.raises(DeliveryError) as caught:
        await poster.send(ChannelRef.parse(KEY), digest(), idempotency_key="k")
    got = caught.value
    assert got.gone is expected.get("gone", False)
    assert got.ambiguous is expected.get("ambiguous", False)
    assert got.retry_after == expected.get("retry_after")


async def test_a_failure_after_part_of_a_digest_was_posted_is_ambiguous(
    poster: DiscordAdapter, channel: Any
) -> None:
    replies = iter([SimpleNamespace(id=1), discord.RateLimited(60.0)])

    def send(*_args: Any, **_kwargs: Any) -> Any:
        item = next(replies)
        if isinstance(item, BaseException):
            raise item
        return item

    channel.send.side_effect = send
    with pytest.raises(DeliveryError) as caught:
        await poster.send(ChannelRef.parse(KEY), digest(25), idempotency_key="k")
    assert caught.value.ambiguous and "1" in str(caught.value)


async def test_removed_from_a_server_pauses_its_channels_only(adapter: DiscordAdapter) -> None:
    store = adapter.service.store
    for key in (KEY, f"discord:{GUILD}:9", "discord:999:1", "slack:T1:C1"):
        store.ensure_channel(key, NOW)
    await adapter.on_guild_remove(SimpleNamespace(id=GUILD))  # type: ignore[arg-type]
    paused = {c.key: c.paused_reason for c in store.channels()}
    assert paused == {
        KEY: GUILD_REMOVED,
        f"discord:{GUILD}:9": GUILD_REMOVED,
        "discord:999:1": None,
        "slack:T1:C1": None,
    }


# --------------------------------------------------------------------- end to end


def next_digest(service: BotService) -> Any:
    channel = service.store.channel(KEY)
    assert channel is not None and channel.next_digest_at is not None
    return channel.next_digest_at.replace(tzinfo=channel.next_digest_at.tzinfo or UTC)


async def test_subscribe_then_one_digest_reaches_the_channel_once(
    adapter: DiscordAdapter, channel: Any
) -> None:
    inter = interaction()
    await invoke(adapter, "subscribe", inter, query="dpo")
    sent(inter.response.send_message)
    service = adapter.service
    outbox = Outbox({"discord": adapter})
    slot = next_digest(service)

    await service.deliver_due(outbox, slot)
    [message] = sent(channel.send)
    assert adapter.channel_ids == [CHANNEL]  # type: ignore[attr-defined]
    nonce = message["nonce"]
    assert isinstance(nonce, str) and 0 < len(nonce) <= 25
    shown = message_text(message)
    assert "Direct Preference Optimization" in shown
    assert "https://arxiv.org/abs/2305.18290" in shown

    await service.deliver_due(outbox, slot)  # a second tick (or a second instance)
    await service.deliver_due(outbox, slot + timedelta(minutes=1))
    assert channel.send.await_count == 1


async def test_a_channel_the_bot_lost_access_to_is_paused_and_status_says_so(
    adapter: DiscordAdapter, channel: Any
) -> None:
    await invoke(adapter, "subscribe", interaction(), query="dpo")
    channel.send.side_effect = _http_error(discord.Forbidden, 403, 50001)
    service = adapter.service
    slot = next_digest(service)
    await service.deliver_due(Outbox({"discord": adapter}), slot)
    assert channel.send.await_count == 1
    stored = service.store.channel(KEY)
    assert stored is not None and stored.paused_reason

    inter = interaction()
    await invoke(adapter, "status", inter)
    [message] = sent(inter.response.send_message)
    assert "paused" in message_text(message)
    await service.deliver_due(Outbox({"discord": adapter}), slot + timedelta(days=1))
    assert channel.send.await_count == 1  # no more 403s for a paused channel
