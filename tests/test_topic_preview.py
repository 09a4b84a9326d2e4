"""`/papers subscribe` previews what a topic would have brought; `/papers list` its volume."""

from __future__ import annotations

from datetime import timedelta

from bot.messages import ReplyKind
from tests.conftest import NOW
from tests.fakes import TestBot, paper


async def test_subscribe_previews_the_last_four_weeks(bot: TestBot) -> None:
    reply = await bot.ask("subscribe dpo")
    # Two DPO papers in the sample, listed today and three days ago: both reached the store an
    # hour ago, within `LIVE_LAG` of their lists, so both count as announced today.
    assert "about 0.5 papers a week (busiest day: 2)" in reply.text
    best = reply.text.index("Direct Preference Optimization: Your Language Model")
    assert best < reply.text.index("Preference tuning without reinforcement learning")
    assert "narrow it" not in reply.text


async def test_one_paper_a_week_reads_in_the_singular(bot: TestBot) -> None:
    # Four papers over the four weeks, each on its own day and older than LIVE_LAG.
    bot.store.upsert_many(
        [
            paper(
                f"2606.0010{n}",
                f"Sparse mixture routing {n}",
                "sparse mixture routing",
                published_at=NOW - timedelta(days=3 + 6 * n),
            )
            for n in range(4)
        ],
        NOW - timedelta(days=2),
    )
    reply = await bot.ask("subscribe sparse mixture routing")
    assert "about 1 paper a week (busiest day: 1)" in reply.text


async def test_subscribe_to_a_topic_with_nothing_says_so(bot: TestBot) -> None:
    reply = await bot.ask("subscribe quantum gravity")
    assert reply.kind is not ReplyKind.ERROR
    assert "Nothing matched this topic in the last four weeks." in reply.text


async def test_busy_topic_gets_three_examples_and_a_hint_to_narrow(bot: TestBot) -> None:
    day = NOW - timedelta(days=6)  # older than LIVE_LAG: announced on its own day
    busy = [
        paper(f"2406.{n:05d}", f"Sparse attention study {n}", upvotes=n, hf_daily_date=day.date())
        for n in range(16)
    ]
    quiet = [
        paper(
            f"2405.{n:05d}",
            f"Sparse attention notes {n}",
            hf_daily_date=(NOW - timedelta(days=9 + n)).date(),
        )
        for n in range(4)
    ]
    old = paper(
        "2301.00001", "Sparse attention long ago", hf_daily_date=(NOW - timedelta(days=40)).date()
    )
    bot.store.upsert_many([*busy, *quiet, old], NOW - timedelta(hours=1))

    reply = await bot.ask("subscribe sparse attention")
    assert "about 5 papers a week (busiest day: 16)" in reply.text
    assert reply.text.count("• ") == 3
    assert "long ago" not in reply.text
    assert "narrow it with a filter" in reply.text and "has:code" in reply.text

    listing = await bot.ask("list")
    assert "sparse attention · about 5 papers a week (busiest day: 16)" in listing.text


async def test_list_shows_each_topics_weekly_volume(bot: TestBot) -> None:
    await bot.ask("subscribe dpo")
    await bot.ask("subscribe quantum gravity")
    await bot.ask("subscribe --hf-top")
    listing = (await bot.ask("list")).text
    assert "1. dpo · about 0.5 papers a week (busiest day: 2)" in listing
    assert "3. --hf-top (Hugging Face top papers)\n" in listing  # not a search: no volume
    assert "2. quantum gravity · no papers in the last four weeks" in listing


async def test_help_subscribe_explains_the_preview(bot: TestBot) -> None:
    text = (await bot.ask("help subscribe")).text
    assert "last four weeks" in text and "busiest day passed 15 papers" in text
