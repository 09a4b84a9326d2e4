"""Search quality as a user notices it: acronyms both ways, plurals and hyphens, words standing
together ranked first, a "most of your words" tail, no tier hiding an abstract match, and the
judged set (bench/relevance/) held above the floor it reached.

The judged set runs over the real captures in ../shared/fixtures where that folder exists (CI
always has it) and, everywhere, over the bundled demo set alone. Both are fixed corpora with
fixed judgments: the figures are deterministic, not timings.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.relevance.corpus import SHARED_FIXTURES, load_corpus, load_judgments
from bench.relevance.evaluate import evaluate, mean
from bot.models import PaperIn
from bot.search import Hit, parse_query, search_papers
from bot.store import PaperStore
from tests.fakes import paper

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

# Just below what the judged set reached (54 queries over the captures and the demo set:
# mean nDCG@5 0.969, every query >= 0.812, the lowest "time series forecasting"; FTS5 bm25
# 0.884 in the same run; the 16 queries with demo papers over the demo set alone: 0.956, FTS5
# 0.815). A change that lowers any of them fails.
FLOOR_MEAN = 0.96
FLOOR_EACH = 0.8  # every query
FLOOR_DEMO_MEAN = 0.95
FLOOR_DEMO_EACH = 0.85


def search(store: PaperStore, text: str, limit: int = 10) -> list[Hit]:
    return search_papers(store, parse_query(text, NOW), limit, NOW)


def full(store: PaperStore, text: str) -> list[str]:
    return [h.paper.id for h in search(store, text) if not h.partial]


# ----------------------------------------------------------------------- acronyms


def test_an_acronym_finds_papers_that_only_spell_it_out(store: PaperStore) -> None:
    # No paper says "(DPO)", so nothing was mined: the shipped list knows it.
    store.upsert_many(
        [
            paper("2601.00001", "Direct Preference Optimization: your model is a reward model"),
            paper("2601.00002", "Preference data for direct optimization of rankers"),
        ],
        NOW,
    )
    assert store.aliases() == {}
    assert full(store, "dpo") == ["2601.00001"]  # the phrase, never the loose words


def test_spelled_out_words_find_the_acronym_and_its_plural(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper("2601.00011", "Hallucination in VLMs"),
            paper("2601.00012", "A VLM for charts"),
            paper("2601.00013", "Mixture of Experts at scale"),
            paper("2601.00014", "Sparse MoE routing"),
            paper("2601.00015", "Vision transformers for language grounding"),
        ],
        NOW,
    )
    assert set(full(store, "vision language models")) == {"2601.00011", "2601.00012"}
    assert set(full(store, "mixture of experts")) == {"2601.00013", "2601.00014"}
    assert set(full(store, "vlms")) == {"2601.00011", "2601.00012"}
    assert set(full(store, "moe")) == {"2601.00013", "2601.00014"}


def test_llm_and_llms_and_large_language_models_are_one_thing(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper("2601.00021", "LLMs as judges"),
            paper("2601.00022", "An LLM for proofs"),
            paper("2601.00023", "Large language models can plan"),
            paper("2601.00024", "Large models of language change"),  # scattered: not it
        ],
        NOW,
    )
    expected = {"2601.00021", "2601.00022", "2601.00023"}
    assert set(full(store, "llm")) == expected
    assert set(full(store, "LLMs")) == expected
    assert set(full(store, "large language models")) >= expected


def test_kv_cache_in_every_spelling(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper("2601.00031", "KV-cache compression for long contexts"),
            paper("2601.00032", "Paging the key-value cache"),
            paper("2601.00033", "A KV cache eviction policy"),
            paper("2601.00034", "Cache-friendly key sorting"),
        ],
        NOW,
    )
    expected = {"2601.00031", "2601.00032", "2601.00033"}
    for text in ("kv cache", "KV-cache", "key-value cache", "key value cache"):
        assert set(full(store, text)) == expected, text


def test_mined_aliases_still_work_beside_the_shipped_list(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper(
                "2601.00041",
                "Zebra routing",
                "We propose Quantized Zebra Routing (QZR), a router.",
            ),
            paper("2601.00042", "Quantized zebra routing revisited"),
        ],
        NOW,
    )
    assert set(full(store, "qzr")) == {"2601.00041", "2601.00042"}


def test_an_acronym_finds_its_expansion_with_any_function_word(store: PaperStore) -> None:
    # RLHF is "reinforcement learning from human feedback" in the shipped list; "with" in its
    # place, and "Direct-Preference Optimization" hyphenated, are the same acronym; words of
    # the expansion that are apart, or split over two keywords, are not.
    store.upsert_many(
        [
            paper("2601.00051", "Reinforcement learning with human feedback for agents"),
            paper("2601.00052", "Reinforcement learning for human tutors and feedback"),
            paper("2601.00053", "Ranking", "Direct-Preference Optimization of rankers."),
            PaperIn(
                id="2601.00054",
                title="Ranking",
                source="test",
                ai_keywords=["direct preference", "optimization"],
            ),
        ],
        NOW,
    )
    assert full(store, "rlhf") == ["2601.00051"]
    assert full(store, "dpo") == ["2601.00053"]
    assert full(store, '"human feedback"') == ["2601.00051"]


# ------------------------------------------------------------------ proximity


def test_words_together_in_the_title_rank_above_scattered_words(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper(
                "2601.00051",
                "A multi-agent framework for multimodal medical reasoning in Indic languages",
                "Models are evaluated on reasoning in each language, at scale.",
            ),
            paper("2601.00052", "Reward shaping for agents", "Language models rank them."),
            paper("2601.00053", "Small language models as routers", "We study routing."),
        ],
        NOW,
    )
    # together in the title, then together in the abstract, then scattered
    assert full(store, "language models") == ["2601.00053", "2601.00052", "2601.00051"]


# ------------------------------------------------------------------ relaxation


def test_few_full_matches_are_followed_by_papers_matching_most_words(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper("2601.00061", "Diffusion distillation in two steps"),
            paper("2601.00062", "Distilled diffusion samplers"),
            paper("2601.00063", "Diffusion models for audio"),
            paper("2601.00064", "Graph neural networks"),
        ],
        NOW,
    )
    hits = search(store, "diffusion distillation")
    full_ids = [h.paper.id for h in hits if not h.partial]
    partial_ids = [h.paper.id for h in hits if h.partial]
    assert set(full_ids) == {"2601.00061", "2601.00062"}  # "distilled" is "distillation"
    assert partial_ids == ["2601.00063"]
    assert hits[-1].partial and not any(h.partial for h in hits[: len(full_ids)])


def test_relaxation_never_drops_a_filter_or_an_author(store: PaperStore) -> None:
    store.upsert_many(
        [
            paper("2601.00071", "Testing deep models", categories=["cs.SE"]),
            paper("2601.00072", "Deep testing of compilers", categories=["cs.LG"]),
            paper("2601.00073", "Neural nets", categories=["cs.LG"], authors=["Ada Lovelace"]),
        ],
        NOW,
    )
    hits = search(store, "deep testing cat:cs.LG")
    assert [h.paper.id for h in hits] == ["2601.00072"]
    assert search(store, "compilers nets author:lovelace")[0].paper.id == "2601.00073"
    assert all(h.paper.id == "2601.00073" for h in search(store, "compilers nets author:lovelace"))


# ------------------------------------------------------------------- exact top-k


def test_an_abstract_match_is_not_hidden_by_many_title_matches(store: PaperStore) -> None:
    # Many titles carry the words once; one paper is all about them in its abstract and is
    # far more popular. Every matching paper competes: no title-only tier hides it.
    papers = [paper(f"2601.{i:05d}", f"Reward model number {i}") for i in range(100, 160)]
    papers.append(
        paper(
            "2601.00099",
            "What we learned",
            "Our reward model beats every reward model; reward model training, reward model "
            "data and reward model evaluation.",
            upvotes=500,
        )
    )
    store.upsert_many(papers, NOW)
    assert "2601.00099" in full(store, "reward model")[:10]


# ------------------------------------------------------------- one-word searches


def _two_senses(store: PaperStore) -> None:
    """Most papers saying "alignment" align language models with people; one short title
    about aligning image features says the word most."""
    subjects = ["safety", "refusals", "jailbreaks", "honesty", "reward hacking", "sycophancy"]
    store.upsert_many(
        [
            paper(
                f"2601.0020{i}",
                f"Alignment of large language models against {subject}",
                f"We study the alignment of large language models with human values: {subject} "
                "in chat assistants, preference data and human feedback.",
            )
            for i, subject in enumerate(subjects)
        ]
        + [
            paper(
                "2601.00210",
                "Alignment of diffusion features",
                "Feature alignment of diffusion transformers with pretrained vision encoders "
                "speeds up image generation training.",
            )
        ],
        NOW,
    )


def test_a_one_word_search_puts_the_stores_main_sense_first(store: PaperStore) -> None:
    # On the word alone, BM25 puts the image paper first (it says "alignment" most, in the
    # shortest title). The best matches share a subject (language models, human values), and
    # a one-word search lifts the papers on it: the reader of this store means LLM alignment.
    _two_senses(store)
    assert store.index is not None
    query = parse_query("alignment", NOW)
    on_the_word = store.index.search(query, store.aliases(), 10, NOW)
    assert on_the_word[0].id == "2601.00210"
    found = full(store, "alignment")
    assert "2601.00210" not in found[:3]
    assert set(found) == {r.id for r in on_the_word}  # reordered, nothing added or dropped


def test_a_one_words_own_forms_never_count_as_its_sense() -> None:
    # Every candidate matches the word in one of its forms: "llm" and "llms" (and the
    # spelled-out "large language models") must not become the sense itself, or the lift
    # would reward how a paper spells the word, not what it is about.
    from bot.aliases import build_alias_table
    from bot.index_forms import own_forms
    from bot.index_schema import en_tokens

    table = build_alias_table({}, en_tokens)
    for word in ("llm", "llms"):
        assert {"llm", "llms", "larg", "languag", "model"} <= own_forms(word, table)
    assert {"dpo", "direct", "prefer", "optim"} <= own_forms("dpo", table)
    assert own_forms("align", table) == {"align"}


def test_more_words_are_ranked_on_the_words_alone(store: PaperStore) -> None:
    # Two words say what they mean: the order is the words' own (BM25 lifted by upvotes and
    # recency), exactly as the index ranks them without the one-word step.
    _two_senses(store)
    assert store.index is not None
    for text in ("alignment of", "alignment models", "alignment alignment", "feature alignment"):
        query = parse_query(text, NOW)
        own = [r.id for r in store.index.search(query, store.aliases(), 10, NOW)]
        assert full(store, text) == own, text
    assert full(store, "feature alignment") == ["2601.00210"]
    assert full(store, "diffusion alignment")[0] == "2601.00210"


# -------------------------------------------------------------------- judged set


def test_judged_set_on_the_demo_papers_stays_above_its_floor() -> None:
    papers = load_corpus(fixtures=None)
    present = {p.id for p in papers}
    judgments = [j for j in load_judgments() if present & set(j["grades"])]
    assert len(judgments) >= 10
    results = evaluate(papers, judgments, systems=("paperboy", "fts5"))
    ours = mean([r.ndcg["paperboy"] for r in results])
    assert ours >= FLOOR_DEMO_MEAN
    assert ours >= mean([r.ndcg["fts5"] for r in results]) + 0.05
    below = {r.query: round(r.ndcg["paperboy"], 3) for r in results}
    assert {q: v for q, v in below.items() if v < FLOOR_DEMO_EACH} == {}


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} is absent")
def test_judged_set_beats_fts5_and_stays_above_its_floor() -> None:
    results = evaluate(load_corpus(), load_judgments(), systems=("paperboy", "fts5"))
    ours = [r.ndcg["paperboy"] for r in results]
    assert len(results) >= 40
    assert mean(ours) >= FLOOR_MEAN
    assert mean(ours) >= mean([r.ndcg["fts5"] for r in results]) + 0.05
    below = {r.query: round(r.ndcg["paperboy"], 3) for r in results}
    assert {q: v for q, v in below.items() if v < FLOOR_EACH} == {}


# ---------------------------------------------------------------- result cache


def test_a_repeated_search_sees_papers_stored_in_between(store: PaperStore) -> None:
    store.upsert_many([paper("2601.00081", "Reward models for agents")], NOW)
    assert full(store, "reward models") == ["2601.00081"]
    assert full(store, "reward models") == ["2601.00081"]  # answered again (cached)
    store.upsert_many([paper("2601.00082", "Reward models, calibrated", upvotes=90)], NOW)
    assert set(full(store, "reward models")) == {"2601.00081", "2601.00082"}


def test_a_newly_mined_acronym_applies_to_the_next_search(store: PaperStore) -> None:
    store.upsert_many([paper("2601.00091", "Walrus boosting for trees")], NOW)
    assert full(store, "wbt") == []
    store.upsert_many(
        [paper("2601.00092", "Tree ensembles", "We use Walrus Boosting for Trees (WBT).")], NOW
    )
    assert set(full(store, "wbt")) == {"2601.00091", "2601.00092"}


def test_cached_and_computed_answers_are_the_same(store: PaperStore) -> None:
    store.upsert_many(load_corpus(fixtures=None), NOW)
    assert store.index is not None
    texts = ["alignment", "large language models", "dpo", "reward model safety"]
    cached = [[(h.paper.id, h.score, h.partial) for h in search(store, t)] for t in texts]
    again = [[(h.paper.id, h.score, h.partial) for h in search(store, t)] for t in texts]
    store.index.result_cache = 0
    computed = [[(h.paper.id, h.score, h.partial) for h in search(store, t)] for t in texts]
    assert cached == again == computed


def _generated(n: int) -> list[PaperIn]:
    """Papers with the word statistics of a large store: a few words in most abstracts and
    in some titles and keywords, a long tail of rare ones (a fixed seed: the same papers)."""
    rng = random.Random(7)
    head = "model language learning reward optimization diffusion video alignment agents".split()
    tail = [f"w{i}" for i in range(400)]
    vocab = head + tail
    weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(vocab))]
    out = []
    for i in range(n):
        title = " ".join(rng.choices(vocab, weights, k=6))
        abstract = " ".join(rng.choices(vocab, weights, k=80))
        keywords = [" ".join(rng.choices(vocab, weights, k=2)) for _ in range(2)]
        out.append(
            paper(
                f"2601.{i:05d}",
                title,
                abstract=abstract,
                ai_keywords=keywords,
                upvotes=i % 7,
                published_at=NOW - timedelta(days=i % 400),
            )
        )
    return out


def test_head_first_search_gives_the_full_answer(
    store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Large indexes leave lookups of very common abstract words out of the query and add
    # them back as optional clauses, and score phrases of common words for the head query's
    # best papers only (bot.index_rank.head_first). Forced on for 3,000 papers: every answer
    # is the full query's answer, and most come the head-first way.
    import bot.index_rank
    import bot.index_read

    store.upsert_many(_generated(3_000), NOW)
    assert store.index is not None
    store.index.result_cache = 0
    texts = [
        "model",
        "language model",
        "reward optimization",
        '"language model"',
        "model -reward",
        "alignment agents",
        "diffusion OR video",
        "model w3",
        "w5 w7",
        "learning upvotes:>=3",
        "model since:30d",
        "language model since:90d",
        "w5 since:30d",
    ]
    full = [[(h.paper.id, round(h.score, 3), h.partial) for h in search(store, t)] for t in texts]
    taken: list[bool] = []

    def head_first(*args: Any) -> Any:
        hits = bot.index_rank.head_first(*args)
        taken.append(hits is not None)
        return hits

    deferred: list[int] = []
    with_deferred = bot.index_rank._with_deferred

    def count_deferred(*args: Any) -> Any:
        deferred.append(len(args[3]))
        return with_deferred(*args)

    monkeypatch.setattr(bot.index_read, "HEAD_FIRST_DOCS", 0)
    monkeypatch.setattr(bot.index_read, "head_first", head_first)
    monkeypatch.setattr(bot.index_rank, "_with_deferred", count_deferred)
    # the same papers with the same scores (a dense lookup scored where the full query
    # scores it: inside the best-of of a word's alias forms, "lm" for "language model")
    got = [[(h.paper.id, round(h.score, 3), h.partial) for h in search(store, t)] for t in texts]
    assert got == full
    assert sum(taken) >= 5
    assert len(deferred) >= 2  # phrases scored among the head's best papers only
