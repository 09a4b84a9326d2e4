"""Every /papers command through BotService.handle, as a user in a channel sees it."""

from __future__ import annotations

import pytest

from bot.command_context import Example
from bot.commands import COMMANDS, CommandSpec, build_text, help_text, parse_text
from bot.messages import ChannelRef, Pending, Reply, ReplyKind
from tests.conftest import NOW
from tests.fakes import CHAN, FakeRemote, TestBot, paper, sample_papers

OTHER = ChannelRef("slack", "T1", "C2")
OTHER_TEAM = ChannelRef("slack", "T2", "C1")
PAPERS = sample_papers(NOW)


@pytest.mark.parametrize(
    ("spec", "example"),
    [(spec, example) for spec in COMMANDS.values() for example in spec.examples],
    ids=lambda v: getattr(v, "text", getattr(v, "name", "")),
)
async def test_every_example_shows_what_it_promises(
    bot: TestBot, spec: CommandSpec, example: Example
) -> None:
    """The examples `/papers help` shows (sopel's `@plugin.example`): each is the command it
    illustrates, and its answer shows what the example says it does."""
    assert parse_text(example.text)[0] == spec.name
    for before in example.after:
        assert not (await bot.ask(before)).is_error, before
    reply = await bot.ask(example.text)
    assert not reply.is_error, reply.plain_text()
    assert example.shows in reply.plain_text()


def test_text_grammar() -> None:
    assert parse_text("subscribe dpo") == ("subscribe", "dpo")
    assert parse_text("  SUBSCRIBE   dpo  rlhf ") == ("subscribe", "dpo rlhf")
    assert parse_text("dpo") == ("search", "dpo")
    assert parse_text("search list") == ("search", "list")
    assert parse_text("2305.18290v2") == ("paper", "2305.18290v2")
    assert parse_text("https://arxiv.org/abs/2305.18290") == (
        "paper",
        "https://arxiv.org/abs/2305.18290",
    )
    assert parse_text("") == ("help", "")
    assert parse_text("top week") == ("top", "week")


def test_build_text_round_trips_typed_options() -> None:
    assert build_text("search", {"query": "dpo"}) == "search dpo"
    assert parse_text(build_text("search", {"query": "list"})) == ("search", "list")
    text = build_text("schedule", {"kind": "weekly", "day": "mon", "time": "08:30"})
    assert parse_text(text) == ("schedule", "weekly mon 08:30")
    assert parse_text(build_text("paper", {"id": "2305.18290"})) == ("paper", "2305.18290")


async def test_search_finds_dpo_papers_first_including_spelled_out(bot: TestBot) -> None:
    reply = await bot.ask("dpo")
    assert reply.kind is ReplyKind.RESULTS
    ids = [c.id for c in reply.cards]
    assert ids[:2] == ["2305.18290", "2401.00001"] or set(ids[:2]) == {"2305.18290", "2401.00001"}
    assert "2402.00002" not in ids
    assert reply.ephemeral
    assert "subscribe dpo" in reply.footer


async def test_search_with_no_match_says_so(bot: TestBot) -> None:
    reply = await bot.ask("quantum chromodynamics")
    assert not reply.cards
    assert "No papers match" in reply.title


async def test_search_says_when_it_adds_papers_matching_some_words(bot: TestBot) -> None:
    reply = await bot.ask("diffusion proteins lattice")  # no paper has all three
    assert [c.id for c in reply.cards] == ["2402.00002"]
    assert "no paper matches all your words" in reply.footer
    reply = await bot.ask("preference optimization reward")
    assert [c.id for c in reply.cards][0] == "2305.18290"  # all three words: first
    assert "also papers matching some of your words (the last 1)" in reply.footer
    reply = await bot.ask("dpo")
    assert "some of your words" not in reply.footer


async def test_bad_query_gets_a_clear_error(bot: TestBot) -> None:
    reply = await bot.ask("dpo since:someday")
    assert reply.kind is ReplyKind.ERROR
    assert "since" in (reply.title + reply.text).lower()


async def test_paper_lookup_by_id_and_urls(bot: TestBot) -> None:
    for text in (
        "2305.18290",
        "2305.18290v3",
        "https://huggingface.co/papers/2305.18290",
        "arxiv.org/pdf/2305.18290v1.pdf",
        "hep-th/9901001v2",
    ):
        reply = await bot.ask(text)
        assert reply.kind is ReplyKind.PAPER, text
    reply = await bot.ask("https://arxiv.org/abs/2305.18290")
    assert reply.cards[0].title.startswith("Direct Preference Optimization")
    assert reply.cards[0].upvotes == 120


async def test_unknown_paper_without_remote_says_not_in_store(bot: TestBot) -> None:
    reply = await bot.ask("2501.99999")
    assert reply.kind is ReplyKind.ERROR
    assert "2501.99999" in reply.title


async def test_unknown_paper_is_fetched_stored_and_shown(bot: TestBot) -> None:
    remote = FakeRemote({"2501.99999": paper("2501.99999", "A fetched paper")})
    bot = bot.with_remote(remote)
    pending = await bot.handle("2501.99999")
    assert isinstance(pending, Pending) and remote.lookups == []  # the adapter acks first
    assert pending.ephemeral is False  # a paper in detail is shown to the channel
    reply = await pending.reply()
    assert reply.kind is ReplyKind.PAPER and reply.cards[0].title == "A fetched paper"
    assert bot.store.get("2501.99999") is not None
    stored = await bot.handle("2501.99999")  # stored now: answered at once
    assert isinstance(stored, Reply) and stored.cards[0].title == "A fetched paper"


async def test_search_with_too_few_local_hits_asks_the_remote_sources(bot: TestBot) -> None:
    bot = bot.with_remote(FakeRemote({"2501.88888": paper("2501.88888", "Walrus tuning at scale")}))
    pending = await bot.handle("walrus")
    assert isinstance(pending, Pending) and pending.ephemeral is True
    reply = await pending.reply()
    assert [c.id for c in reply.cards] == ["2501.88888"]
    # A search the store answers in full never waits for the network.
    bot.settings.search.results = 2
    assert isinstance(await bot.handle("preference"), Reply)


async def test_failing_remote_lookup_is_explained(bot: TestBot) -> None:
    bot = bot.with_remote(FakeRemote(fail=True))
    reply = await bot.ask("2501.99999")
    assert reply.kind is ReplyKind.ERROR and "failed" in reply.title
    assert bot.store.count() == len(PAPERS)


async def test_top_periods(bot: TestBot) -> None:
    day = await bot.ask("top")
    assert [c.id for c in day.cards] == ["2305.18290"]
    week = await bot.ask("top week")
    assert [c.id for c in week.cards] == ["2305.18290", "2401.00001"]
    month = await bot.ask("top month")
    assert [c.id for c in month.cards] == ["2305.18290", "2402.00002", "2401.00001"]
    bad = await bot.ask("top year")
    assert bad.kind is ReplyKind.ERROR and "day|week|month" in bad.text


async def test_subscribe_list_unsubscribe_per_channel(bot: TestBot) -> None:
    first = await bot.ask("subscribe dpo")
    assert first.kind is ReplyKind.INFO and not first.ephemeral
    assert "schedule" in first.text  # the first subscribe says how to change the schedule
    again = await bot.ask("subscribe  DPO")
    assert "already" in again.title
    await bot.ask('subscribe "reward model" cat:cs.LG')
    await bot.ask("subscribe diffusion", channel=OTHER)

    listing = await bot.ask("list")
    assert "1. dpo" in listing.text and '2. "reward model" cat:cs.LG' in listing.text
    assert "diffusion" not in listing.text
    assert "Next digest" in listing.text

    other_team = await bot.ask("list", channel=OTHER_TEAM)
    assert "No topics" in other_team.text

    gone = await bot.ask("unsubscribe 1")
    assert "dpo" in gone.title
    missing = await bot.ask("unsubscribe dpo")
    assert missing.kind is ReplyKind.ERROR and '1. "reward model"' in missing.text
    by_text = await bot.ask('unsubscribe "Reward  model" cat:cs.LG')
    assert by_text.kind is ReplyKind.INFO
    assert "No topics" in (await bot.ask("list")).text
    assert "diffusion" in (await bot.ask("list", channel=OTHER)).text


async def test_subscribe_rejects_empty_and_bad_topics(bot: TestBot) -> None:
    assert (await bot.ask("subscribe")).kind is ReplyKind.ERROR
    assert (await bot.ask("subscribe sort:sideways")).kind is ReplyKind.ERROR
    assert "No topics" in (await bot.ask("list")).text


async def test_schedule_validation_and_next_time(bot: TestBot) -> None:
    ok = await bot.ask("schedule daily 09:00 Europe/Berlin")
    assert ok.kind is ReplyKind.INFO
    assert "every day at 09:00 Europe/Berlin" in ok.title
    assert "Next digest" in ok.text
    weekly = await bot.ask("schedule weekly mon")
    assert "every Monday at 09:00 Europe/Berlin" in weekly.title
    for bad, hint in (
        ("schedule daily 25:00", "HH:MM"),
        ("schedule daily 09:00 Mars/Olympus", "IANA"),
        ("schedule fortnightly", "schedule daily 09:00"),
        ("schedule weekly 09:00", "day"),
    ):
        reply = await bot.ask(bad)
        assert reply.kind is ReplyKind.ERROR, bad
        assert hint in reply.text, bad
    off = await bot.ask("schedule off")
    assert "off" in off.title
    channel = bot.store.channel(CHAN.key)
    assert channel is not None and channel.schedule == "off"


async def test_managing_commands_need_permission(bot: TestBot) -> None:
    reply = await bot.ask("subscribe dpo", can_manage=False)
    assert reply.kind is ReplyKind.ERROR and "manage" in reply.title
    assert bot.store.subscriptions(CHAN.key) == []
    assert (await bot.ask("dpo", can_manage=False)).kind is ReplyKind.RESULTS


async def test_help_lists_every_command(bot: TestBot) -> None:
    reply = await bot.ask("help")
    for spec in COMMANDS.values():
        assert spec.usage in reply.text
    assert reply.text == help_text()
    one = await bot.ask("help schedule")
    assert "schedule daily 09:00 Europe/Berlin" in one.text
    for reply in (await bot.ask("help"), await bot.ask("help search")):
        assert "acronyms work both ways" in reply.text
        assert "words stand together" in reply.text
        assert "papers that have most of them" in reply.text


async def test_status_reports_store_size(bot: TestBot) -> None:
    reply = await bot.ask("status")
    assert f"{len(PAPERS)} papers" in reply.text


async def test_internal_failure_becomes_a_polite_error(
    bot: TestBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("database exploded")

    monkeypatch.setattr(bot.store, "top", boom)
    reply = await bot.ask("top")
    assert reply.kind is ReplyKind.ERROR
    assert "exploded" not in reply.title + reply.text


async def test_digest_post_posts_into_the_channel(bot: TestBot) -> None:
    await bot.ask("subscribe dpo")
    reply = await bot.ask("digest post")
    assert reply.title == "Posted this channel's digest (2 papers)."
    [post] = bot.outbox.sent
    assert post.channel == CHAN.key and post.paper_ids == ["2305.18290", "2401.00001"]
    again = await bot.ask("digest post")  # the ledger never posts a paper twice
    assert len(bot.outbox.sent) == 1 and "Posted" not in again.title


async def test_top_skips_a_daily_list_dated_in_the_future(bot: TestBot) -> None:
    # A source that dates a list years ahead must not hold the top of `/papers top` for years.
    ahead = paper(
        "2501.77777", "A list from the future", hf_daily_date=NOW.date().replace(year=2099)
    )
    ahead.upvotes = 10_000
    bot.store.upsert_many([ahead], NOW)
    for period in ("top", "top week", "top month"):
        reply = await bot.ask(period)
        assert reply.cards and "2501.77777" not in [c.id for c in reply.cards], period


async def test_a_pending_answer_runs_its_work_once() -> None:
    # An adapter that asks for the answer twice (a retried send) must not run it twice: for
    # `/papers digest post` that would post the digest again.
    runs: list[int] = []

    async def finish() -> Reply:
        runs.append(1)
        return Reply(kind=ReplyKind.INFO, title=f"run {len(runs)}")

    pending = Pending(finish)
    first, second = await pending.reply(), await pending.reply()
    assert runs == [1] and first.title == second.title == "run 1"
