"""Smaller things a user ran into: an over-long topic, `paperboy digest` beside a running bot,
`paperboy reindex` beside a running bot, Kaggle authors with an affiliation."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import AsyncMock

import pytest
from sqlalchemy import Engine

from adapters.discord import DiscordAdapter
from bot.cli import main
from bot.cli_run import digest_once
from bot.config import Settings
from bot.messages import ChannelRef, Invocation, UserRef
from bot.runtime import open_store
from bot.service import BotService
from bot.sources.snapshot import parse_snapshot_record
from bot.store import PaperStore
from tests.adapters.fake_slack import FakeSlackApi, slack_api
from tests.adapters.test_slack import settings as slack_settings
from tests.conftest import NOW
from tests.fakes import paper, setup_channel

__all__ = ["slack_api"]

CHAN = ChannelRef("slack", "T0001", "C0001")


# ------------------------------------------------------------------ topics


async def test_a_topic_over_500_characters_is_refused_before_anything_is_written(
    engine: Engine,
) -> None:
    store = PaperStore(engine)
    service = BotService(Settings(), store, clock=lambda: NOW)
    user = UserRef("slack", "U1")
    long_topic = " ".join(["reinforcement"] * 40)  # 559 characters
    reply = await service.ask(Invocation(f"subscribe {long_topic}", CHAN, user))
    assert reply.is_error
    assert reply.title == "That topic is too long (559 characters; at most 500)."
    assert store.channel(CHAN.key) is None and store.subscriptions(CHAN.key) == []

    fits = " ".join(["learning"] * 55)  # 494 characters: the same answer on both databases
    reply = await service.ask(Invocation(f"subscribe {fits}", CHAN, user))
    assert not reply.is_error and [s.query for s in store.subscriptions(CHAN.key)] == [fits]


# ------------------------------------------------------------------ Kaggle authors


def test_a_fourth_authors_parsed_item_is_an_affiliation_not_part_of_the_name() -> None:
    record = {
        "id": "hep-ph/9901001",
        "title": "Pion form factors",
        "authors_parsed": [
            ["Tolstoy", "V. N.", "", "INP, Moscow State University"],
            ["Smith", "J.", "Jr"],
            ["Doe", "A.", "", "CERN", "extra"],
            ["Plato"],
        ],
    }
    parsed = parse_snapshot_record(record)
    assert parsed is not None
    assert parsed.authors == ["V. N. Tolstoy", "J. Smith Jr", "A. Doe", "Plato"]


# ------------------------------------------------------------------ digest from the shell


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process (the running bot's HTTP endpoint) already listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


async def test_paperboy_digest_posts_through_the_web_api_beside_an_http_mode_bot(
    store: PaperStore, slack_api: FakeSlackApi, busy_port: int
) -> None:
    base = slack_settings(slack_api, mode="http", SLACK_SIGNING_SECRET="s3cret")
    cfg = base.model_copy(update={"slack": base.slack.model_copy(update={"port": busy_port})})
    now = datetime.now(UTC)  # the command runs on the wall clock
    setup_channel(store, CHAN.key, ["dpo"], now - timedelta(days=1))
    store.upsert_many(
        [
            paper(
                "2606.00001",
                "Direct preference optimization (DPO) at scale",
                published_at=now - timedelta(hours=3),
                hf_daily_date=now.date(),
            )
        ],
        now - timedelta(hours=2),
    )

    code, text = await digest_once(cfg, store, CHAN, dry_run=False)

    assert code == 0, text
    assert text.startswith("Posted this channel's digest (1 paper)")
    (post,) = slack_api.posts()
    assert post["channel"] == "C0001"
    assert [c.method for c in slack_api.calls] == ["chat.postMessage"]  # nothing else opened


async def test_paperboy_digest_on_discord_logs_in_without_the_gateway(
    store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = BotService(Settings(), store, clock=lambda: NOW)
    adapter = DiscordAdapter(service, token="t0ken")
    login = AsyncMock()
    connect = AsyncMock()
    monkeypatch.setattr(adapter.client, "login", login)
    monkeypatch.setattr(adapter.client, "connect", connect)
    await adapter.open_for_posting()
    login.assert_awaited_once_with("t0ken")
    connect.assert_not_called()
    await adapter.stop()


# ------------------------------------------------------------------ reindex


def test_paperboy_reindex_beside_a_running_bot_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "paperboy.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    settings = Settings.load(str(cfg), environ={})
    running = open_store(settings)  # the bot: it has written papers and holds the writer
    running.upsert_many([paper("2606.00001", "A paper")], NOW)
    try:
        assert main(["--config", str(cfg), "reindex"]) == 1
    finally:
        running.close()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the search index in ") and "in use by another" in err
    assert "\n" not in err and "Traceback" not in err
    assert main(["--config", str(cfg), "reindex"]) == 0  # once it is free, it works
