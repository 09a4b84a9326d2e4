"""The query language and the whole search path, as a user sees them: which papers, in which
order, and a clear answer (never a stack trace) for anything typed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bot import query
from bot.errors import QueryError
from bot.models import PaperIn
from bot.query import (
    AllOf,
    AnyOf,
    Author,
    Category,
    Not,
    Phrase,
    Query,
    Sort,
    Word,
    describe,
    parse_query,
)
from bot.query_values import Upvotes
from bot.search import search_papers
from bot.store import PaperStore

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def paper(pid: str, title: str, **kw: object) -> PaperIn:
    values: dict[str, object] = {
        "abstract": "",
        "authors": ["Ann Other"],
        "categories": ["cs.LG"],
        "published_at": datetime(2025, 1, 1, tzinfo=UTC),
        "upvotes": 0,
    }
    values.update(kw)
    return PaperIn(id=pid, title=title, source="test", **values)  # type: ignore[arg-type]


CORPUS = [
    paper(
        "2305.18290",
        "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
        abstract="We introduce Direct Preference Optimization (DPO), a stable and simple "
        "algorithm for fine-tuning language models from human preferences.",
        authors=["Rafael Rafailov", "Archit Sharma", "Chelsea Finn"],
        categories=["cs.LG", "cs.AI"],
        published_at=datetime(2023, 5, 29, tzinfo=UTC),
        upvotes=120,
    ),
    paper(
        "2606.01001",
        "Scaling preference learning to long contexts",
        abstract="We apply direct preference optimization to documents of a million tokens.",
        authors=["Jane Doe", "Wei Chen"],
        categories=["cs.CL"],
        published_at=datetime(2026, 6, 10, tzinfo=UTC),
        upvotes=5,
    ),
    paper(
        "2605.02002",
        "Reward models for RLHF",
        abstract="Reinforcement Learning from Human Feedback (RLHF) trains a reward model "
        "on comparisons.",
        authors=["John Smith"],
        categories=["cs.CL"],
        published_at=datetime(2026, 5, 1, tzinfo=UTC),
        upvotes=40,
    ),
    paper(
        "2501.03003",
        "Vision transformers for robot grasping",
        abstract="A robot learns to grasp objects from camera images.",
        authors=["María García"],
        categories=["cs.RO", "cs.CV"],
        published_at=datetime(2025, 1, 15, tzinfo=UTC),
        upvotes=0,
    ),
    paper(
        "2406.04004",
        "A survey of large language models",
        abstract="We review large language models, their training and their evaluation.",
        authors=["Jane Doe"],
        categories=["cs.CL"],
        published_at=datetime(2024, 6, 1, tzinfo=UTC),
        upvotes=300,
        ai_keywords=["survey", "language model"],
    ),
    paper(
        "2604.05005",
        "Model merging without data",
        abstract="Merging the weights of two models; the language of the paper is plain.",
        authors=["Sam Lee"],
        categories=["stat.ML"],
        published_at=datetime(2026, 4, 20, tzinfo=UTC),
        upvotes=12,
    ),
]


@pytest.fixture
def corpus(store: PaperStore) -> PaperStore:
    store.upsert_many(CORPUS, NOW)
    return store


def ids(store: PaperStore, text: str, limit: int = 10) -> list[str]:
    """The papers matching every word (the "also matching some words" tail left out)."""
    hits = search_papers(store, parse_query(text, NOW), limit, NOW)
    return [h.paper.id for h in hits if not h.partial]


# --------------------------------------------------------------------------- parser


def test_words_phrases_or_and_exclusions_parse_into_an_ast() -> None:
    q = parse_query('reward "language model" rlhf OR dpo -survey -"robot arm"', NOW)
    assert q.clauses == (
        Word("reward"),
        Phrase("language model"),
        AnyOf((Word("rlhf"), Word("dpo"))),
        Not(Word("survey")),
        Not(Phrase("robot arm")),
    )
    assert q.sort is Sort.RELEVANCE


def test_groups_and_operators_parse() -> None:
    q = parse_query('(rlhf OR dpo) author:"Jane Doe" cat:cs.CL -(robot grasp)', NOW)
    assert q.clauses == (
        AnyOf((Word("rlhf"), Word("dpo"))),
        Author("jane doe"),
        Category("cs.cl"),
        Not(AllOf((Word("robot"), Word("grasp")))),
    )


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("since:2024-06-01", datetime(2024, 6, 1, tzinfo=UTC)),
        ("since:2024-06", datetime(2024, 6, 1, tzinfo=UTC)),
        ("since:7d", NOW - timedelta(days=7)),
        ("since:4w", NOW - timedelta(weeks=4)),
        ("since:3m", datetime(2026, 3, 15, 12, tzinfo=UTC)),
        ("since:1y", datetime(2025, 6, 15, 12, tzinfo=UTC)),
    ],
)
def test_since_forms(text: str, since: datetime) -> None:
    assert parse_query(f"dpo {text}", NOW).since == since


def test_until_a_date_includes_that_day() -> None:
    assert parse_query("until:2024-06-30", NOW).until == datetime(2024, 7, 1, tzinfo=UTC)
    assert parse_query("until:2024-06", NOW).until == datetime(2024, 7, 1, tzinfo=UTC)
    assert parse_query("until:7d", NOW).until == NOW - timedelta(days=7)


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("upvotes:>=10", ">=", 10),
        ("upvotes:>10", ">", 10),
        ("upvotes:<=3", "<=", 3),
        ("upvotes:<3", "<", 3),
        ("upvotes:=7", "=", 7),
        ("upvotes:25", ">=", 25),
    ],
)
def test_upvote_comparisons(text: str, op: str, value: int) -> None:
    assert parse_query(text, NOW).upvotes == Upvotes(op, value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("dpo since:yesterdayish", "since:2024-06-01"),
        ("since:2024-13-45", "since:2024-06-01"),
        ("until:", "until:2024-06-01"),
        ("dpo sort:bogus", "sort:top"),
        ("upvotes:>=abc", "upvotes:>=10"),
        ("upvotes:" + "9" * 5000, "upvotes:>=10"),
        ("author:", "author:hinton"),
        ("cat:!!", "cat:cs.CL"),
    ],
)
def test_bad_operator_values_explain_with_an_example(text: str, needle: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(text, NOW)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('"unbalanced quote', ["unbalanced", "quote"]),
        ("NEAR(dpo, rlhf)", ["near", "dpo", "rlhf"]),
        ("'; DROP TABLE paper; --", ["drop", "table", "paper"]),
        ("foo:bar", ["foo:bar"]),
    ],
)
def test_odd_input_is_plain_words(text: str, words: list[str]) -> None:
    q = parse_query(text, NOW)
    assert q.plain_text().split() == words


@pytest.mark.parametrize("text", ["", "   ", "*", "OR", "-", "🤖🤖", "()", '""', "- OR ("])
def test_nothing_to_search_is_an_empty_query(text: str) -> None:
    assert parse_query(text, NOW).is_empty()


def test_long_input_is_cut_and_says_so() -> None:
    q = parse_query("word " * 2000, NOW)
    assert len(q.clauses) == query.MAX_TERMS
    assert q.truncated
    assert "cut to" in describe(q)
    assert parse_query("x" * 10_000, NOW).truncated


def test_filters_alone_are_a_query() -> None:
    q = parse_query("since:7d sort:top", NOW)
    assert not q.is_empty() and q.sort is Sort.TOP and not q.has_text()


def test_describe_says_what_was_searched() -> None:
    q = parse_query(
        '"reward model" OR rlhf author:doe cat:cs.CL since:2024-06-01 upvotes:>=10 sort:new',
        NOW,
    )
    assert describe(q) == (
        '"reward model" OR rlhf · by doe · in cs.cl · since 2024-06-01 · upvotes ≥ 10 · '
        "newest first"
    )


# ------------------------------------------------------------------- search results


def test_words_must_all_match(corpus: PaperStore) -> None:
    assert ids(corpus, "reward rlhf") == ["2605.02002"]
    assert ids(corpus, "reward zebra") == []


def test_stemming_finds_other_forms(corpus: PaperStore) -> None:
    assert "2501.03003" in ids(corpus, "grasps robots")


def test_acronym_finds_papers_that_only_spell_it_out(corpus: PaperStore) -> None:
    found = ids(corpus, "dpo")
    assert found[0] == "2305.18290"
    assert "2606.01001" in found  # says only "direct preference optimization"


def test_spelled_out_phrase_finds_the_acronym(corpus: PaperStore) -> None:
    corpus.upsert_many([paper("2606.09009", "DPO for code", abstract="We run DPO on code.")], NOW)
    assert "2606.09009" in ids(corpus, '"direct preference optimization"')


def test_phrase_must_be_adjacent(corpus: PaperStore) -> None:
    assert set(ids(corpus, '"language models"')) == {"2305.18290", "2406.04004"}
    # Both words occur in 2604.05005, but not next to each other.
    assert "2604.05005" in ids(corpus, "language models")


def test_or_and_groups(corpus: PaperStore) -> None:
    assert set(ids(corpus, "rlhf OR grasping")) == {"2605.02002", "2501.03003"}
    assert ids(corpus, "(rlhf OR grasping) robot") == ["2501.03003"]


def test_exclusions(corpus: PaperStore) -> None:
    assert "2406.04004" not in ids(corpus, "language -survey")
    assert ids(corpus, 'preference -"human preferences"') == ["2606.01001"]
    assert "2406.04004" not in ids(corpus, "language -author:doe")


def test_author_filter(corpus: PaperStore) -> None:
    assert set(ids(corpus, "author:doe")) == {"2606.01001", "2406.04004"}
    assert ids(corpus, 'author:"wei chen"') == ["2606.01001"]
    assert ids(corpus, "author:garcia") == ["2501.03003"]  # accents folded


def test_category_filter_and_archive(corpus: PaperStore) -> None:
    assert set(ids(corpus, "cat:cs.CL")) == {"2606.01001", "2605.02002", "2406.04004"}
    assert "2604.05005" not in ids(corpus, "model cat:cs")
    assert ids(corpus, "model cat:stat") == ["2604.05005"]


def test_date_filters(corpus: PaperStore) -> None:
    assert ids(corpus, "preference since:30d") == ["2606.01001"]
    assert ids(corpus, "preference until:2023-05-29") == ["2305.18290"]
    assert ids(corpus, "preference until:2023-05-28") == []
    assert set(ids(corpus, "since:2026-04-01 until:2026-05")) == {"2604.05005", "2605.02002"}


def test_upvote_filter(corpus: PaperStore) -> None:
    assert set(ids(corpus, "upvotes:>=100")) == {"2305.18290", "2406.04004"}
    assert ids(corpus, "model upvotes:<5") == []
    assert ids(corpus, "upvotes:=40") == ["2605.02002"]
    assert ids(corpus, "upvotes:<0") == []


def test_sort_new_and_top(corpus: PaperStore) -> None:
    assert ids(corpus, "model sort:new") == ["2605.02002", "2604.05005", "2406.04004", "2305.18290"]
    assert ids(corpus, "model sort:top") == ["2406.04004", "2305.18290", "2605.02002", "2604.05005"]


@pytest.mark.parametrize(
    "narrow", ["upvotes:>=1", "upvotes:>=50", "cat:cs.CL", "cat:cs.CL upvotes:<1000"]
)
def test_a_filter_narrows_and_never_rescores(corpus: PaperStore, narrow: str) -> None:
    # A filter keeps the papers it allows with the scores (so the order) the words gave them:
    # tantivy would score a range 1.0 and a category by BM25 over the paper's category list.
    # (Two words: a one-word search also weighs what its best matches share, within the
    # filter, bot.index_feedback.)
    def scored(text: str) -> dict[str, float]:
        hits = search_papers(corpus, parse_query(text, NOW), 10, NOW)
        return {h.paper.id: round(h.score, 6) for h in hits if not h.partial}

    words, narrowed = scored("language model"), scored(f"language model {narrow}")
    assert narrowed and narrowed == {i: words[i] for i in narrowed}
    both = ids(corpus, "language model")
    assert ids(corpus, f"language model {narrow}") == [i for i in both if i in narrowed]


def test_filters_without_words_list_most_upvoted_first(corpus: PaperStore) -> None:
    assert ids(corpus, "cat:cs.CL since:1y") == ["2605.02002", "2606.01001"]
    assert ids(corpus, "since:1y sort:new")[0] == "2606.01001"


def test_title_outranks_keywords_outranks_abstract_outranks_authors(store: PaperStore) -> None:
    filler = "a study of methods and results in several settings"
    store.upsert_many(
        [
            paper(
                "2601.00004",
                f"Nothing here {filler}",
                authors=["Kim Zebra"],
                abstract=filler,
                ai_keywords=["methods"],
            ),
            paper(
                "2601.00003",
                f"Plain title {filler}",
                abstract=f"zebra {filler}",
                ai_keywords=["results"],
            ),
            paper(
                "2601.00002",
                f"Other title {filler}",
                ai_keywords=["zebra"],
                abstract=filler,
            ),
            paper(
                "2601.00001",
                f"Zebra title {filler}",
                abstract=filler,
                ai_keywords=["settings"],
            ),
        ],
        NOW,
    )
    assert ids(store, "zebra") == ["2601.00001", "2601.00002", "2601.00003", "2601.00004"]


def test_upvotes_and_recency_break_equal_relevance(store: PaperStore) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    store.upsert_many(
        [
            paper("2001.00001", "Quokka behaviour", published_at=old, upvotes=0),
            paper("2001.00002", "Quokka behaviour", published_at=old, upvotes=200),
            paper("2606.00003", "Quokka behaviour", published_at=NOW, upvotes=0),
        ],
        NOW,
    )
    assert ids(store, "quokka") == ["2001.00002", "2606.00003", "2001.00001"]


def test_limit_and_scores(corpus: PaperStore) -> None:
    hits = search_papers(corpus, parse_query("language", NOW), 2, NOW)
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score > 0
    assert len(search_papers(corpus, parse_query("language", NOW), 10, NOW)) == 3


def test_plain_text_for_remote_search() -> None:
    q = parse_query('"reward model" rlhf OR dpo -survey author:doe since:7d', NOW)
    assert q.plain_text() == "reward model rlhf"


# ------------------------------------------------------------- anything a user types

NASTY = [
    '"',
    "'",
    "(",
    ")",
    "*",
    "NEAR(",
    "OR",
    "AND",
    "NOT",
    "-",
    "--",
    ":",
    "author:",
    "cat:",
    'author:"',
    "since:",
    "upvotes:",
    "sort:",
    "'; DROP TABLE paper; --",
    "\\",
    "\x00",
    "🤖",
    "e\u0301",
    "%",
    "_",
    "title:foo",
    "dpo",
    "language",
    "a" * 300,
]
QUERY_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), max_size=40).map(" ".join),
    st.lists(st.sampled_from(NASTY), max_size=400).map("".join),
)


@given(text=QUERY_TEXT)
@settings(max_examples=300, deadline=None)
def test_parser_never_raises_anything_but_query_error(text: str) -> None:
    try:
        q = parse_query(text, NOW)
    except QueryError as exc:
        assert str(exc)
        return
    assert isinstance(q, Query)
    assert isinstance(describe(q), str)
    assert len(q.clauses) <= query.MAX_TERMS


@given(text=QUERY_TEXT)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_whole_search_path_never_raises_anything_but_query_error(
    corpus: PaperStore, text: str
) -> None:
    try:
        q = parse_query(text, NOW)
    except QueryError:
        return
    hits = search_papers(corpus, q, 5, NOW)
    assert len(hits) <= 5
    assert len({h.paper.id for h in hits}) == len(hits)


def test_huge_input_searches_quickly_and_safely(corpus: PaperStore) -> None:
    q = parse_query("dpo " + "🤖 * - ( ) OR " * 3000, NOW)
    assert q.truncated
    assert [h.paper.id for h in search_papers(corpus, q, 5, NOW)][0] == "2305.18290"


def test_daily_date_counts_when_there_is_no_publication_date(store: PaperStore) -> None:
    store.upsert_many(
        [paper("2606.07007", "Okapi study", published_at=None, hf_daily_date=date(2026, 6, 14))],
        NOW,
    )
    assert ids(store, "okapi since:7d") == ["2606.07007"]


def test_many_title_matches_still_honour_exclusions_and_filters(store: PaperStore) -> None:
    # Enough papers with the words in their titles that the title/keyword tier answers.
    many = [
        paper(
            f"2601.{i:05d}",
            f"Zebra stripes study {i}",
            abstract="About camouflage." if i % 2 else "About heat and flies.",
            upvotes=i,
        )
        for i in range(40)
    ]
    store.upsert_many(many, NOW)
    found = ids(store, "zebra stripes -camouflage upvotes:>=10", limit=50)
    assert found and all(int(pid[-2:]) % 2 == 0 and int(pid[-2:]) >= 10 for pid in found)
    assert len(found) == 15
    assert ids(store, "zebra stripes", limit=3) == ["2601.00039", "2601.00038", "2601.00037"]


def test_sort_shortcut_gives_the_same_answer(
    corpus: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.index_rank

    monkeypatch.setattr(bot.index_rank, "SORT_HEAD", 1)  # look among the single top paper first
    assert ids(corpus, "model sort:top", limit=1) == ["2406.04004"]  # is the top paper
    assert ids(corpus, "model sort:new", limit=1) == ["2605.02002"]  # newest is no match
    assert ids(corpus, "model sort:top") == ["2406.04004", "2305.18290", "2605.02002", "2604.05005"]


def test_phrase_keeps_the_gap_of_a_left_out_function_word(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper("2601.00001", "Reinforcement learning from human feedback at scale"),
            paper("2601.00002", "Reinforcement learning human feedback"),
            paper("2601.00003", "Human feedback from reinforcement learning"),
        ],
        NOW,
    )
    assert ids(store, '"reinforcement learning from human feedback"') == ["2601.00001"]
