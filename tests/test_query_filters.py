"""The filters `has:`, `stars:`, `org:`, `kw:` and `venue:`: parsing, search, subscriptions
and digests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import Engine

from bot import digest
from bot.errors import QueryError
from bot.index_schema import facets
from bot.query import AnyOf, Not, Word, clauses_text, parse_query
from bot.query_filters import AtVenue, Has, Keyword, Org, Stars
from bot.query_values import Upvotes
from bot.store import PaperStore
from tests.fakes import TestBot, paper

NOW = datetime(2026, 6, 17, 9, 0, tzinfo=UTC)


def clauses(text: str) -> tuple[object, ...]:
    return parse_query(text, NOW).clauses


def test_each_filter_parses() -> None:
    assert clauses("dpo has:code") == (Word("dpo"), Has("code"))
    assert clauses("has:PROJECT") == (Has("project"),)
    assert clauses("stars:>=100 stars:5 stars:>7") == (
        Stars(Upvotes(">=", 100)),
        Stars(Upvotes(">=", 5)),
        Stars(Upvotes(">", 7)),
    )
    assert clauses('org:"Google  DeepMind"') == (Org("google deepmind"),)
    assert clauses('kw:RLHF kw:"reward model"') == (Keyword("rlhf"), Keyword("reward model"))
    assert clauses("venue:neurips") == (AtVenue("neurips"),)
    assert clauses("venue:NeurIPS2025") == clauses('venue:"NeurIPS 2025"')
    assert clauses("venue:nips-2025") == (AtVenue("neurips", 2025),)
    assert clauses("-has:code venue:icml OR venue:iclr") == (
        Not(Has("code")),
        AnyOf((AtVenue("icml"), AtVenue("iclr"))),
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("stars:abc", "`stars:abc` is not a count"),
        ("has:banana", "`has:banana` is not something a paper can have"),
        ("venue:", "`venue:` needs a name"),
        ("venue:bananaconf", "is not a venue I know"),
        ("venue:neurips0001", "out of range"),
        ("org:", "`org:` needs a name"),
        ('kw:"!!"', "`kw:` needs a name"),
        ('has:"a\nb"', "`has:a b` is not"),
    ],
)
def test_a_bad_value_is_one_line_with_an_example(text: str, says: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(f"dpo {text}", NOW)
    assert says in str(raised.value)
    assert "\n" not in str(raised.value)


FILTER_TEXTS = st.sampled_from(
    [
        "has:code",
        "has:project",
        "-has:code",
        "stars:>=10",
        "stars:<5",
        "stars:=3",
        "stars:42",
        "org:stanford",
        'org:"google deepmind"',
        "kw:rlhf",
        'kw:"reward model"',
        "venue:neurips",
        "venue:ICLR2025",
        'venue:"acl 2024"',
        "OR",
        "dpo",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(FILTER_TEXTS, max_size=6))
def test_any_combination_parses_and_reads_back(parts: list[str]) -> None:
    query = parse_query(" ".join(parts), NOW)
    assert parse_query(clauses_text(query), NOW).clauses == query.clauses


async def search_ids(bot: TestBot, text: str) -> str:
    reply = await bot.ask(text)
    assert not reply.is_error, reply.plain_text()
    return reply.plain_text()


DPO = "Direct Preference Optimization"
TUNING = "Preference tuning without reinforcement learning"
PROTEIN = "Diffusion models for protein design"


async def test_filters_narrow_a_search(bot: TestBot) -> None:
    assert DPO in await search_ids(bot, "preference has:code")
    assert TUNING not in await search_ids(bot, "preference has:code")
    assert TUNING in await search_ids(bot, "preference -has:code")
    assert DPO in await search_ids(bot, "preference stars:>=1000")
    assert TUNING in await search_ids(bot, "preference stars:<1")
    assert DPO in await search_ids(bot, "org:STANFORD preference")
    assert TUNING not in await search_ids(bot, "org:stanford preference")
    assert DPO in await search_ids(bot, "venue:neurips")
    assert DPO in await search_ids(bot, 'venue:"NeurIPS 2023" sort:new')
    assert "No papers" in await search_ids(bot, "venue:neurips2024")
    assert DPO in await search_ids(bot, 'kw:"preference optimization"')
    assert "No papers" in await search_ids(bot, "kw:protein")
    both = await search_ids(bot, "has:code OR has:project")
    assert DPO in both and PROTEIN in both and TUNING not in both


async def test_a_filter_only_query_lists_the_papers(bot: TestBot) -> None:
    text = await search_ids(bot, "has:code stars:>=100")
    assert DPO in text and PROTEIN not in text
    assert PROTEIN in await search_ids(bot, "has:project")


async def test_a_bad_filter_is_a_one_line_answer(bot: TestBot) -> None:
    for text in ("dpo stars:abc", "has:banana", "venue:"):
        reply = await bot.ask(text)
        assert reply.is_error
        assert "Traceback" not in reply.plain_text()


async def test_a_subscription_keeps_its_filters(bot: TestBot) -> None:
    reply = await bot.ask("subscribe dpo has:code stars:>=10")
    assert not reply.is_error, reply.plain_text()
    listed = (await bot.ask("list")).plain_text()
    assert "dpo has:code stars:>=10" in listed
    preview = (await bot.ask("digest")).plain_text()
    assert DPO in preview


def test_digest_selection_honours_the_filters(engine: Engine) -> None:
    store = PaperStore(engine)
    slot = NOW
    store.upsert_many(
        [
            paper(
                "2606.00001", "DPO with code", github_repo="https://github.com/a/b", github_stars=50
            ),
            paper(
                "2606.00002",
                "DPO with few stars",
                github_repo="https://github.com/a/c",
                github_stars=3,
            ),
            paper("2606.00003", "DPO without code"),
            paper("2606.00004", "DPO at ICML", arxiv_comment="Accepted at ICML 2026"),
        ],
        slot - timedelta(hours=3),
    )
    since = slot - timedelta(days=1)
    got = digest.select_one(store, digest.Plan("k", ("dpo has:code stars:>=10",), since), slot)
    assert [p.paper.id for p in got.picks] == ["2606.00001"]
    got = digest.select_one(store, digest.Plan("k", ("dpo venue:icml2026",), since), slot)
    assert [p.paper.id for p in got.picks] == ["2606.00004"]


@settings(max_examples=25, deadline=None)
@given(st.lists(FILTER_TEXTS, min_size=1, max_size=5))
def test_a_subscription_reads_back_the_same_query(parts: list[str]) -> None:
    from bot.db import make_engine

    text = " ".join(parts)
    query = parse_query(text, NOW)
    if query.is_empty():
        return
    engine = make_engine("sqlite://")
    store = PaperStore(engine)
    store.ensure_channel("k", NOW)
    sub, _created = store.subscribe("k", clauses_text(query), NOW)
    assert parse_query(sub.query, NOW).clauses == query.clauses


async def test_help_search_lists_the_filters(bot: TestBot) -> None:
    text = (await bot.ask("help search")).plain_text()
    for name in ("has:code", "has:project", "stars:>=100", "org:", "kw:", "venue:neurips2025"):
        assert name in text
    assert "/papers preference has:code stars:>=1000" in text


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["has", "stars", "org", "kw", "venue", "-has", "-venue"]),
            st.text(max_size=20),
        ),
        max_size=4,
    )
)
def test_any_filter_value_parses_or_is_a_query_error(pairs: list[tuple[str, str]]) -> None:
    text = " ".join(f"{op}:{value}" for op, value in pairs)
    try:
        query = parse_query(text, NOW)
    except QueryError as exc:
        assert "\n" not in str(exc)
        return
    assert parse_query(clauses_text(query), NOW).clauses == query.clauses


@pytest.mark.parametrize(
    "text", ['stars:0" venue:0"', 'dpo "has:code"', '"-preference" "OR" dpo', 'kw:rlhf "stars:5"']
)
def test_a_quoted_word_that_looks_like_syntax_reads_back_as_a_word(text: str) -> None:
    query = parse_query(text, NOW)
    assert parse_query(clauses_text(query), NOW).clauses == query.clauses


@pytest.mark.parametrize(
    ("repo", "page", "found"),
    [
        ("https://github.com/org/repo", "https://example.org/p", ["has:code", "has:project"]),
        ("http://github.com/org/repo", None, []),  # the card shows no link for it either
        ("https://gitlab.com/org/repo", "javascript:alert(1)", []),
    ],
)
def test_has_code_and_project_match_what_the_card_links(
    repo: str, page: str | None, found: list[str]
) -> None:
    assert facets({"github_repo": repo, "project_page": page}) == found


TOPIC_PARTS = FILTER_TEXTS | st.sampled_from(
    ["until:2025-01-01", "since:7d", "upvotes:>=5", "cat:cs.LG", "-survey", "preference"]
)


@settings(max_examples=30, deadline=None)
@given(st.lists(TOPIC_PARTS, min_size=1, max_size=5))
def test_any_filter_combination_subscribes_lists_and_unsubscribes_by_text(
    parts: list[str],
) -> None:
    """Through the commands, as a team types them: any mix of the filters either subscribes
    (then `list` shows it, `digest` and `catchup` answer, `unsubscribe <its text>` removes it)
    or is refused in one line, and nothing raises."""
    asyncio.run(_subscribe_round_trip(" ".join(parts)))


async def _subscribe_round_trip(text: str) -> None:
    from bot.db import make_engine
    from tests.fakes import CHAN, sample_papers

    store = PaperStore(make_engine("sqlite://"))
    store.upsert_many(sample_papers(NOW), NOW - timedelta(hours=1))
    bot = TestBot(store, NOW)
    reply = await bot.ask(f"subscribe {text}")
    if reply.is_error:
        assert "\n" not in reply.title and "Traceback" not in reply.plain_text()
        assert store.subscriptions(CHAN.key) == []
        return
    [sub] = store.subscriptions(CHAN.key)
    assert parse_query(sub.query, NOW).clauses == parse_query(text, NOW).clauses
    assert sub.query in (await bot.ask("list")).plain_text()
    for command in ("digest", "catchup 2w"):
        answer = await bot.ask(command)
        assert not answer.is_error, (command, answer.plain_text())
    gone = await bot.ask(f"unsubscribe {sub.query}")
    assert not gone.is_error, gone.plain_text()
    assert store.subscriptions(CHAN.key) == []
