"""Reactions teach the ranking, through the service: 👍/👎 on a digest post move similar papers
in that channel's next digest, and nowhere else; `/papers taste` says what was learned."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.messages import ChannelRef, ReactionEvent
from bot.models import Delivery, PaperIn
from bot.store import PaperStore
from bot.taste import reaction_sign
from bot.taste_store import Outcome, forget, record, tastes
from tests.conftest import NOW
from tests.fakes import TestBot, paper, setup_channel

LIKE, DISLIKE, CONTROL = (ChannelRef("slack", "T1", c) for c in ("CLIKE", "CDISLIKE", "CCONTROL"))
TOPIC = "cat:cs.LG"  # a filter alone ranks by upvotes: the moves are plain to see
DAY1 = datetime(2026, 6, 16, 9, 0, 30, tzinfo=NOW.tzinfo)  # the first daily slot, after NOW
DAY2 = DAY1 + timedelta(days=1)


def lg_paper(
    pid: str, title: str, abstract: str, at: datetime, upvotes: int | None = None
) -> PaperIn:
    """A cs.LG paper published at `at` (the digest topic's papers all are)."""
    return paper(pid, title, abstract, upvotes=upvotes, published_at=at, categories=["cs.LG"])


# Day 1: one paper about reward model ensembles. Day 2: two more like it (B, E) and one that
# is not (C), all in cs.LG, so without reactions they come by upvotes: E, C, B.
A = lg_paper(
    "2606.00001",
    "Reward model ensembles against overoptimization in preference learning",
    "Ensembles of reward models with an uncertainty penalty curb reward overoptimization "
    "when policies are tuned against a learned reward model.",
    NOW + timedelta(hours=1),
)
DAY2_PAPERS = [
    lg_paper(
        "2606.00010",
        "Uncertainty-penalized reward ensembles for preference learning",
        "We penalize reward model uncertainty across ensembles to limit overoptimization of "
        "the learned reward.",
        DAY1 + timedelta(hours=1),
        upvotes=10,
    ),
    lg_paper(
        "2606.00020",
        "Tactile robot grasping from human preference learning",
        "A robot learns grasping from tactile sensors and pairwise human feedback on grasps.",
        DAY1 + timedelta(hours=1),
        upvotes=20,
    ),
    lg_paper(
        "2606.00030",
        "Conservative reward model ensembles in preference learning",
        "Conservative ensembles of reward models reduce overoptimization in preference "
        "learning with an uncertainty penalty.",
        DAY1 + timedelta(hours=1),
        upvotes=30,
    ),
]
B, C, E = (p.id for p in DAY2_PAPERS)
# Older papers (outside every window) that make the topic's own words common in the store, as
# they are in a real one: words are weighed by how rare they are in the index.
BACKGROUND = [
    paper(
        f"2401.{n:05d}",
        f"Preference learning study {n}",
        f"We study preference learning from human feedback for language models ({n}).",
        published_at=NOW - timedelta(days=400),
        categories=["cs.CL"],
    )
    for n in range(30)
]


@pytest.fixture
def bot(store: PaperStore) -> TestBot:
    """Three channels on one topic, each sent the day-1 digest (paper A alone)."""
    for channel in (LIKE, DISLIKE, CONTROL):
        setup_channel(store, channel.key, [TOPIC], NOW)
    store.upsert_many(BACKGROUND, NOW - timedelta(days=400))
    store.upsert_many([A], NOW + timedelta(hours=1))
    testbot = TestBot(store, DAY1)
    return testbot


async def post_day1(bot: TestBot) -> None:
    report = await bot.service.deliver_due(bot.outbox, DAY1)
    assert report.messages == 3
    bot.store.upsert_many(DAY2_PAPERS, DAY1 + timedelta(hours=1))
    bot.now = DAY2


def ref_of(store: PaperStore, channel: ChannelRef, paper_id: str = A.id) -> str:
    with Session(store.engine) as session:
        row = session.exec(
            select(Delivery).where(
                Delivery.channel_key == channel.key, Delivery.paper_id == paper_id
            )
        ).one()
    assert row.message_ref
    return row.message_ref


def event(
    channel: ChannelRef,
    ref: str,
    emoji: str = "+1",
    *,
    user: str = "U1",
    added: bool = True,
    event_id: str | None = None,
    at: float | None = None,
) -> ReactionEvent:
    return ReactionEvent(channel, ref, user, emoji, added, event_id, at)


async def order(bot: TestBot, channel: ChannelRef) -> list[str]:
    """The channel's next digest, as its papers' ids (a preview: nothing is posted)."""
    reply = await bot.ask("digest", channel)
    return [card.id for card in reply.cards]


def test_thumbs_in_every_spelling_and_skin_tone_and_nothing_else() -> None:
    ups = ["+1", "thumbsup", "+1::skin-tone-2", "thumbsup::skin-tone-6", ":+1:", "👍", "👍🏽"]
    downs = ["-1", "thumbsdown", "-1::skin-tone-5", "👎", "👎🏿", "👎\ufe0f"]
    assert [reaction_sign(e) for e in ups] == [1] * len(ups)
    assert [reaction_sign(e) for e in downs] == [-1] * len(downs)
    others = ["heart", "", "+2", "1", "👍👍", "+1" * 200, None, 1, "eyes::skin-tone-3"]
    assert [reaction_sign(e) for e in others] == [None] * len(others)


async def test_a_thumbs_up_moves_a_similar_paper_up_and_says_why(bot: TestBot) -> None:
    await post_day1(bot)
    before = await order(bot, LIKE)
    assert before == await order(bot, CONTROL)
    assert before.index(C) < before.index(B)  # without reactions the unlike paper leads

    outcome = await bot.service.react(event(LIKE, ref_of(bot.store, LIKE), "+1::skin-tone-3"))
    assert outcome is Outcome.RECORDED

    await bot.service.deliver_due(bot.outbox, DAY2)
    [post] = [p for p in bot.outbox.sent if p.channel == LIKE.key and A.id not in p.paper_ids]
    after = post.paper_ids
    assert after.index(B) < after.index(C)  # the paper like the 👍'd one moved above it
    reasons = {card.id: card.reason for card in post.reply.cards}
    assert reasons[B] == "like 1 paper 👍'd here"
    assert reasons[C] == ""
    assert "like 1 paper 👍'd here" in post.reply.plain_text()
    # Other channels learned nothing.
    [control] = [p for p in bot.outbox.sent if p.channel == CONTROL.key and A.id not in p.paper_ids]
    assert control.paper_ids == before
    assert all(not card.reason for card in control.reply.cards)


async def test_a_thumbs_down_moves_a_similar_paper_down(bot: TestBot) -> None:
    await post_day1(bot)
    before = await order(bot, DISLIKE)
    assert before.index(E) < before.index(C)
    await bot.service.react(event(DISLIKE, ref_of(bot.store, DISLIKE), "-1"))
    after = await order(bot, DISLIKE)
    assert after.index(C) < after.index(E)
    reply = await bot.ask("digest", DISLIKE)
    assert "like 1 paper 👎'd here" in reply.plain_text()


async def test_removing_the_reaction_undoes_it_byte_for_byte(bot: TestBot) -> None:
    await post_day1(bot)
    untouched = (await bot.ask("digest", LIKE)).plain_text()
    ref = ref_of(bot.store, LIKE)
    await bot.service.react(event(LIKE, ref, at=100.0))
    assert (await bot.ask("digest", LIKE)).plain_text() != untouched
    assert await bot.service.react(event(LIKE, ref, added=False, at=200.0)) is Outcome.RECORDED
    assert (await bot.ask("digest", LIKE)).plain_text() == untouched


async def test_redelivered_events_count_once(bot: TestBot) -> None:
    await post_day1(bot)
    ref = ref_of(bot.store, LIKE)
    first = event(LIKE, ref, event_id="Ev1", at=100.0)
    assert await bot.service.react(first) is Outcome.RECORDED
    assert await bot.service.react(first) is Outcome.DUPLICATE  # same event id
    # Slack resent it with a new event id (SX-5): the same reaction, nothing new.
    assert await bot.service.react(event(LIKE, ref, event_id="Ev2", at=100.0)) is Outcome.DUPLICATE
    assert "1 👍 and 0 👎 from 1 person" in (await bot.ask("taste", LIKE)).text
    # Removed, then a late copy of the add arrives with yet another id: it stays removed.
    await bot.service.react(event(LIKE, ref, added=False, event_id="Ev3", at=200.0))
    assert await bot.service.react(event(LIKE, ref, event_id="Ev4", at=100.0)) is Outcome.STALE
    assert (await bot.ask("taste", LIKE)).title == "Nothing learned yet in this channel."
    # A real add after the removal counts again.
    assert await bot.service.react(event(LIKE, ref, event_id="Ev5", at=300.0)) is Outcome.RECORDED
    # Out of order: removed at 400, added again at 500, the removal arriving last: still there.
    assert await bot.service.react(event(LIKE, ref, event_id="Ev7", at=500.0)) is (
        Outcome.DUPLICATE
    )
    late = event(LIKE, ref, added=False, event_id="Ev6", at=400.0)
    assert await bot.service.react(late) is Outcome.STALE
    assert "1 👍" in (await bot.ask("taste", LIKE)).text


async def test_reactions_on_anything_else_are_ignored_without_a_word(bot: TestBot) -> None:
    await post_day1(bot)
    ref = ref_of(bot.store, LIKE)
    ignored = [
        event(LIKE, "msg-999"),  # a message the bot never posted
        event(CONTROL, ref),  # our post, but in another channel
        event(LIKE, ref, "heart"),
        event(LIKE, ref, "+1" * 10_000),
        event(LIKE, "%"),
        event(LIKE, ref + ",%"),
        event(LIKE, "x" * 10_000),
        event(LIKE, ref, user="U" * 10_000),
        event(LIKE, ref, user=""),
        event(ChannelRef("slack", "T1", "C" * 400), ref),
        event(LIKE, ref, at=float("nan")),
    ]
    for e in ignored[:-1]:
        assert await bot.service.react(e) in (Outcome.NOT_OURS, Outcome.IGNORED)
    await bot.service.react(ignored[-1])  # a nonsense time must not raise either
    for channel in (CONTROL,):
        assert (await bot.ask("taste", channel)).title == "Nothing learned yet in this channel."


async def test_a_digest_post_of_several_papers_shares_one_reaction_among_them(
    store: PaperStore,
) -> None:
    channel = ChannelRef("discord", "1", "2")
    setup_channel(store, channel.key, [TOPIC], NOW)
    store.upsert_many(BACKGROUND, NOW - timedelta(days=400))  # words only A has match nothing
    other = paper(B, "Another cs.LG paper", categories=["cs.LG"], published_at=A.published_at)
    store.upsert_many([A, other], NOW + timedelta(hours=1))
    bot = TestBot(store, DAY1)
    await bot.service.deliver_due(bot.outbox, DAY1)
    [post] = bot.outbox.sent
    assert len(post.paper_ids) == 2
    ref = ref_of(store, channel)
    await bot.service.react(event(channel, ref, "👍", user="111"))
    await bot.service.react(event(channel, ref, "👍🏻", user="222"))
    shown = (await bot.ask("taste", channel)).text
    assert "2 👍 and 0 👎 from 2 people" in shown
    assert "(1 reaction)" in shown  # two people, each 1/2 of a reaction per paper
    assert "Words it learned:" in shown
    words = shown.split("Words it learned: ")[1].split(".")[0].split(", ")
    assert set(words) <= set(re.findall(r"[a-z]+", f"{A.title} {A.abstract}".lower()))  # as written


async def test_taste_reset_forgets_and_is_for_channel_managers(bot: TestBot) -> None:
    await post_day1(bot)
    untouched = (await bot.ask("digest", LIKE)).plain_text()
    await bot.service.react(event(LIKE, ref_of(bot.store, LIKE)))
    denied = await bot.ask("taste reset", LIKE, can_manage=False)
    assert denied.is_error and "manage this channel" in denied.title
    assert "1 👍" in (await bot.ask("taste", LIKE, can_manage=False)).text
    done = await bot.ask("taste reset", LIKE)
    assert done.title == "Forgot 1 reaction in this channel."
    assert (await bot.ask("digest", LIKE)).plain_text() == untouched
    again = await bot.ask("taste reset", LIKE)
    assert again.title.startswith("Nothing to forget")
    bad = await bot.ask("taste everything", LIKE)
    assert bad.is_error and "/papers taste reset" in bad.text


def test_reactions_are_stored_and_read_alike_on_sqlite_and_postgresql(engine: Engine) -> None:
    key = "discord:1:2"
    with Session(engine) as session:
        for pid in ("2606.00001", "2606.00002"):
            session.add(
                Delivery(
                    channel_key=key,
                    paper_id=pid,
                    status="sent",
                    message_ref="901,902",
                    claimed_at=NOW,
                )
            )
        session.commit()
    channel = ChannelRef.parse(key)
    assert record(engine, event(channel, "902", "👍", at=1.0), NOW) is Outcome.RECORDED
    assert record(engine, event(channel, "901", "👍", at=2.0), NOW) is Outcome.DUPLICATE
    assert record(engine, event(channel, "901", "👎", user="U2", event_id="E1"), NOW) is (
        Outcome.RECORDED
    )
    assert record(engine, event(channel, "901", "👎", user="U3", event_id="E1"), NOW) is (
        Outcome.DUPLICATE
    )
    taste = tastes(engine, [key, "discord:1:3"])[key]
    assert taste.liked == {"2606.00001": 0.5, "2606.00002": 0.5}
    assert taste.disliked == {"2606.00001": 0.5, "2606.00002": 0.5}
    assert forget(engine, key) == 2
    assert tastes(engine, [key]) == {}
