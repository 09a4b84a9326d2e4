"""`/papers like`: the nearest papers to one paper or several, as a user sees them, and the
similarity itself (`bot.similar`) on a corpus where the right answer is known."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.messages import Pending, ReplyKind
from bot.query import Sort
from bot.similar import similar
from bot.store import PaperStore
from tests.conftest import NOW
from tests.fakes import FakeRemote, TestBot, paper

# ----------------------------------------------------------------------- the command


async def test_like_lists_the_nearest_papers_without_the_paper_itself(bot: TestBot) -> None:
    reply = await bot.ask("like 2305.18290")
    assert reply.kind is ReplyKind.RESULTS and reply.ephemeral
    ids = [card.id for card in reply.cards]
    assert ids[0] == "2401.00001"  # "direct preference optimization for small models"
    assert "2305.18290" not in ids
    assert reply.title.startswith("Papers like Direct Preference Optimization")


async def test_like_takes_links_and_versions(bot: TestBot) -> None:
    for text in (
        "like https://arxiv.org/abs/2305.18290v2",
        "like https://huggingface.co/papers/2305.18290",
        "like arXiv:2305.18290",
    ):
        reply = await bot.ask(text)
        assert [c.id for c in reply.cards][:1] == ["2401.00001"], text


async def test_like_several_papers_leaves_all_of_them_out(bot: TestBot) -> None:
    reply = await bot.ask("like 2305.18290 2401.00001 2305.18290")  # a repeat counts once
    assert reply.title == "Papers like all of these 2 papers"
    assert "2305.18290" not in [c.id for c in reply.cards]
    assert "2401.00001" not in [c.id for c in reply.cards]
    assert "Preference tuning without reinforcement learning (2401.00001)" in reply.text


def add_old_paper(bot: TestBot, title: str, abstract: str) -> None:
    """2201.00003, published 400 days ago: outside since:30d, last by sort:new."""
    bot.store.upsert_many(
        [paper("2201.00003", title, abstract, published_at=NOW - timedelta(days=400))], NOW
    )


async def test_like_since_leaves_out_older_papers(bot: TestBot) -> None:
    add_old_paper(
        bot, "Preference optimization, directly", "Direct preference optimization revisited."
    )
    everything = await bot.ask("like 2305.18290")
    assert "2201.00003" in [c.id for c in everything.cards]
    recent = await bot.ask("like 2305.18290 since:30d")
    assert "2201.00003" not in [c.id for c in recent.cards]
    assert "since:30d" in recent.footer


async def test_like_sort_new_lists_the_nearest_newest_first(bot: TestBot) -> None:
    add_old_paper(
        bot,
        "Direct preference optimization for reward models",
        "Direct preference optimization with a reward model, secretly.",
    )
    nearest = await bot.ask("like 2305.18290")
    assert [c.id for c in nearest.cards][0] == "2201.00003"
    newest = await bot.ask("like 2305.18290 sort:new")
    dates = [c.published for c in newest.cards]
    assert len(dates) >= 2 and dates == sorted(dates, reverse=True)  # type: ignore[type-var]
    assert [c.id for c in newest.cards][-1] == "2201.00003"  # the nearest, but the oldest
    assert "newest first" in newest.footer


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("like", "Papers like which paper?"),
        ("like banana", "`banana` is not an arXiv id"),
        ("like 2305.18290 <!channel>", "is not an arXiv id"),
        ("like 2305.18290 https://evil.example/abs/2305.18290", "is not an arXiv id"),
        ("like " + " ".join(f"2401.{n:05d}" for n in range(11)), "at most 10 papers"),
        ("like 2305.18290 sort:top", "sort:new"),
        ("like 2305.18290 since:banana", "could not read that filter"),
        ("like 2501.99999", "I don't know paper 2501.99999 yet"),
        ("like 2305.18290 2501.99999 2501.99998", "(nor 2501.99998)"),
    ],
)
async def test_bad_like_gets_one_clear_line(bot: TestBot, text: str, says: str) -> None:
    reply = await bot.ask(text)
    assert reply.kind is ReplyKind.ERROR
    assert says in reply.plain_text()
    assert "Traceback" not in reply.plain_text()


async def test_like_of_a_paper_not_stored_looks_it_up_first(bot: TestBot) -> None:
    remote = FakeRemote(
        {"2501.99999": paper("2501.99999", "Preference optimization without a reward model")}
    )
    bot = bot.with_remote(remote)
    pending = await bot.handle("like 2501.99999")
    assert isinstance(pending, Pending) and remote.lookups == []  # the adapter acks first
    reply = await pending.reply()
    assert reply.title == "Papers like Preference optimization without a reward model"
    assert reply.cards[0].id in {"2305.18290", "2401.00001"}
    assert bot.store.get("2501.99999") is not None


async def test_like_when_the_lookup_fails_says_so(bot: TestBot) -> None:
    reply = await bot.with_remote(FakeRemote(fail=True)).ask("like 2501.99999")
    assert reply.kind is ReplyKind.ERROR and "looking it up failed" in reply.title


async def test_help_like_explains_nearest_and_the_button(bot: TestBot) -> None:
    text = (await bot.ask("help like")).plain_text()
    assert "/papers like 2305.18290" in text
    assert "More like this" in text and "sort:new" in text


# ----------------------------------------------------------------------- similarity

DPO = paper(
    "2305.18290",
    "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
    "While large-scale unsupervised language models learn broad world knowledge, achieving "
    "precise control of their behavior is difficult. Existing methods collect human "
    "preference labels and fine-tune with reinforcement learning from human feedback (RLHF), "
    "fitting a reward model and then optimizing a policy. We introduce Direct Preference "
    "Optimization (DPO), which solves the preference learning problem with a simple "
    "classification loss, without a reward model or sampling.",
    ai_keywords=["preference optimization", "reward model", "RLHF"],
)
PREFERENCE = [
    paper(
        "2402.01306",
        "KTO: Model Alignment as Prospect Theoretic Optimization",
        "Aligning language models with human feedback: we propose KTO, which learns from a "
        "binary signal of whether an output is desirable, and matches DPO preference "
        "optimization without paired preferences.",
        ai_keywords=["preference optimization", "human feedback"],
    ),
    paper(
        "2310.12036",
        "A General Theoretical Paradigm to Understand Learning from Human Preferences",
        "Reinforcement learning from human feedback relies on a reward model. We study "
        "preference optimization objectives such as DPO and propose IPO, which avoids "
        "overfitting the preference data.",
    ),
    paper(
        "2403.07691",
        "ORPO: Monolithic Preference Optimization without Reference Model",
        "Odds ratio preference optimization aligns a language model to preferences in one "
        "step, without a reward model or a reference model, outperforming DPO.",
    ),
]
GENERIC = [
    paper(
        f"2404.{n:05d}",
        title,
        "Large language models are trained on large-scale data. We study the language model's "
        f"{topic} and evaluate our model on benchmarks, with fine-tuning and prompting.",
    )
    for n, (title, topic) in enumerate(
        [
            ("Scaling Laws for Large Language Models", "scaling behaviour"),
            ("Efficient Inference for Large Language Models", "inference cost"),
            ("A Survey of Large Language Models", "capabilities"),
            ("Language Models are Few-Shot Learners, Revisited", "few-shot learning"),
            ("Tokenizer Choices in Language Model Pretraining", "tokenization"),
            ("Long Context Language Models", "context length"),
        ]
    )
]


def test_the_nearest_papers_to_dpo_are_preference_optimization_papers(
    store: PaperStore,
) -> None:
    store.upsert_many([DPO, *PREFERENCE, *GENERIC], NOW)
    nearest = [r.id for r in similar(store, [DPO.id], now=NOW, limit=5)]
    assert set(nearest[:3]) == {p.id for p in PREFERENCE}
    assert DPO.id not in nearest


def test_several_papers_find_what_they_share(store: PaperStore) -> None:
    store.upsert_many([DPO, *PREFERENCE, *GENERIC], NOW)
    # KTO and ORPO together: the other preference papers (DPO, IPO) first.
    nearest = [r.id for r in similar(store, ["2402.01306", "2403.07691"], now=NOW, limit=4)]
    assert set(nearest[:2]) == {DPO.id, "2310.12036"}
    assert not {"2402.01306", "2403.07691"} & set(nearest)


def test_similar_leaves_out_exclude_and_skips_unknown_ids(store: PaperStore) -> None:
    store.upsert_many([DPO, *PREFERENCE, *GENERIC], NOW)
    kept = similar(store, [DPO.id, "2999.99999"], now=NOW, exclude={"2402.01306"}, limit=10)
    assert "2402.01306" not in [r.id for r in kept] and kept
    assert similar(store, ["2999.99999"], now=NOW) == []
    assert similar(store, [DPO.id], now=NOW, limit=0) == []


def test_similar_sort_new_orders_by_date(store: PaperStore) -> None:
    dated = [
        dataclasses.replace(p, published_at=NOW - timedelta(days=10 * (i + 1)))
        for i, p in enumerate(PREFERENCE)
    ]
    store.upsert_many([DPO, *dated, *GENERIC], NOW)
    newest = [r.id for r in similar(store, [DPO.id], now=NOW, sort=Sort.NEW, limit=3)]
    assert newest == [p.id for p in dated]


# The judged set's like-cases (bench/relevance/like.py: one per judged topic, its best paper
# as the input, the topic's other graded papers as its neighbours). Measured: mean nDCG@5
# 0.672 over 23 cases with the captures (a search for the input's title words: 0.580 in the
# same run); over the demo set alone 0.576 over 7 cases (title words 0.443).
LIKE_FLOOR = 0.65
LIKE_FLOOR_DEMO = 0.55


def test_like_stays_on_the_judged_topics() -> None:
    from bench.relevance.corpus import SHARED_FIXTURES, load_corpus, load_judgments
    from bench.relevance.like import evaluate_like

    for fixtures, floor in ((SHARED_FIXTURES, LIKE_FLOOR), (None, LIKE_FLOOR_DEMO)):
        if fixtures is not None and not fixtures.is_dir():
            continue  # the captures are absent: the demo set below still runs
        scores = evaluate_like(load_corpus(fixtures), load_judgments())
        like = sum(s.like for s in scores) / len(scores)
        title = sum(s.title for s in scores) / len(scores)
        assert like >= floor and like > title, (fixtures, like, title)


def test_a_window_gives_the_same_papers_whichever_way_it_is_searched(
    store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.similar

    dated = [
        dataclasses.replace(p, published_at=NOW - timedelta(days=100 * i))
        for i, p in enumerate([*PREFERENCE, *GENERIC])
    ]
    store.upsert_many([DPO, *dated], NOW)
    since = NOW - timedelta(days=250)  # the newest three of them
    probed = similar(store, [DPO.id], now=NOW, since=since, limit=3)
    monkeypatch.setattr(bot.similar, "WINDOW_DEPTH", 1)  # too few nearest: the window required
    required = similar(store, [DPO.id], now=NOW, since=since, limit=3)
    assert [r.id for r in probed] == [r.id for r in required]
    assert {r.id for r in probed} == {p.id for p in PREFERENCE}
