"""The digest's relevance floor and its "+N more" count, as a channel sees them.

A paper enters a digest only if it scores a share of its topic's best score over the whole
store (or its abstract alone a share of the best abstract's): a quiet day posts fewer papers,
not filler. The share is held to what it
does on the judged set (bench/relevance/, `python bench/relevance.py --floor`); the figures are
deterministic (fixed corpus, fixed judgments), not timings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.relevance.corpus import SHARED_FIXTURES, load_corpus, load_judgments
from bench.relevance.evaluate import NOW as JUDGED_NOW
from bench.relevance.floor import chosen, judged_matches, tally
from bot import digest
from bot.digest_floor import passes
from bot.query import parse_query
from bot.store import PaperStore
from tests.fakes import paper

SLOT = datetime(2026, 6, 17, 9, 0, tzinfo=UTC)
LAST = SLOT - timedelta(days=1)
KEY = "slack:T1:C1"
FILLER = " ".join(f"word{i}" for i in range(150))


def plan(topics: tuple[str, ...], since: datetime = LAST, **kw: Any) -> digest.Plan:
    return digest.Plan(KEY, topics, since, **kw)


def ids(selection: digest.Selection) -> list[str]:
    return [p.paper.id for p in selection.picks]


def test_a_quiet_day_posts_fewer_papers_not_filler(store: PaperStore) -> None:
    # Weeks ago: papers about reward shaping. Today: one about it, and two that only say
    # "reward" and "shaping" in passing in a long abstract. Only the first is posted; the
    # filler is not shown, nor counted in "+N more".
    store.upsert_many(
        [
            paper("2605.00001", "Reward shaping for sparse tasks", "Reward shaping helps."),
            paper("2605.00002", "Potential-based reward shaping", "On reward shaping."),
        ],
        SLOT - timedelta(days=30),
    )
    store.upsert_many(
        [
            paper("2606.00001", "Reward shaping in multi-agent games", "We shape rewards."),
            paper("2606.00002", "A robot arm benchmark", f"{FILLER} reward {FILLER} shaping"),
            paper("2606.00003", "Protein folding at scale", f"shaping {FILLER} the reward"),
        ],
        LAST + timedelta(hours=1),
    )
    got = digest.select_one(store, plan(("reward shaping",)), SLOT)
    assert ids(got) == ["2606.00001"] and got.more == 0
    # The next day brings only filler: an empty digest (one line, or nothing when quiet).
    store.upsert_many(
        [paper("2606.00004", "Graph coloring", f"{FILLER} reward shaping {FILLER}")],
        SLOT + timedelta(hours=1),
    )
    later = digest.select_one(
        store, plan(("reward shaping",), since=SLOT), SLOT + timedelta(days=1)
    )
    assert later.picks == [] and later.more == 0


def test_topics_without_a_text_score_have_no_floor(store: PaperStore) -> None:
    # `has:code stars:>=100` and --hf-top rank by upvotes: every match is a candidate.
    store.upsert_many(
        [
            paper(
                f"2606.{i:05d}",
                f"Paper {i}",
                f"{FILLER} abstract {i}",
                github_repo=f"https://github.com/a/r{i}",
                github_stars=100 + i,
                upvotes=i,
                hf_daily_date=SLOT.date(),
            )
            for i in range(1, 8)
        ],
        LAST + timedelta(hours=1),
    )
    for topic in ("has:code stars:>=100", digest.HF_TOP):
        got = digest.select_one(store, plan((topic,), max_papers=30), SLOT)
        assert len(got.picks) == 7, topic
    assert passes(parse_query("has:code stars:>=100", SLOT), 0.5, 40.0)
    assert not passes(parse_query("dpo has:code", SLOT), 0.5, 40.0)


def test_more_counts_each_paper_once_and_honours_the_upvote_floor(store: PaperStore) -> None:
    # 30 papers match both topics; half have 3+ upvotes. With a cap of 5, "+N more" is what
    # was left out: each paper once (not once per topic), and only those over the floor.
    store.upsert_many(
        [
            paper(f"2606.{i:05d}", f"DPO and RLHF study {i}", upvotes=3 if i % 2 else 0)
            for i in range(30)
        ],
        LAST + timedelta(hours=1),
    )
    both = digest.select_one(store, plan(("dpo", "rlhf"), max_papers=5), SLOT)
    assert len(both.picks) == 5 and both.more == 25
    floored = digest.select_one(store, plan(("dpo", "rlhf"), max_papers=5, min_upvotes=3), SLOT)
    assert len(floored.picks) == 5 and floored.more == 10
    assert all(p.paper.upvotes >= 3 for p in floored.picks)
    delivered = {p.paper.id for p in floored.picks}
    again = digest.select_one(
        store, plan(("dpo", "rlhf"), max_papers=5, min_upvotes=3), SLOT, delivered
    )
    assert not delivered & set(ids(again)) and again.more == 5


# --------------------------------------------------------------------- the judged set


def _judged_digest(store: PaperStore, topic: str) -> list[str]:
    """The digest of a channel following `topic` whose window holds the whole corpus."""
    papers = load_corpus(fixtures=None)
    store.upsert_many(papers, JUDGED_NOW)
    store.sync_index()
    since = datetime(1990, 1, 1, tzinfo=UTC)
    return ids(digest.select_one(store, digest.Plan(KEY, (topic,), since, 30), JUDGED_NOW))


def test_the_floor_keeps_the_judged_relevant_and_drops_the_judged_irrelevant(
    store: PaperStore,
) -> None:
    # "safety alignment" over the demo papers: graded 3, 2 and 3 are posted; the two that
    # only touch it (grade 1) and the one judges left out (grade 0) are not.
    judged = next(j["grades"] for j in load_judgments() if j["q"] == "safety alignment")
    got = _judged_digest(store, "safety alignment")
    assert len(got) == 3
    assert all(judged.get(pid, 0) >= 2 for pid in got)
    present = {p.id for p in load_corpus(fixtures=None)}
    assert {pid for pid, g in judged.items() if g >= 2 and pid in present} == set(got)


def test_the_floor_on_the_demo_judgments() -> None:
    papers = load_corpus(fixtures=None)
    present = {p.id for p in papers}
    judgments = [j for j in load_judgments() if present & set(j["grades"])]
    t = chosen(judged_matches(papers, judgments), JUDGED_NOW)
    # Reached: 41/46 relevant kept, 6/17 not-about-it cut (11 kept).
    assert t.kept_share("relevant (2-3)") >= 0.85
    assert t.kept_share("not about it (0)") <= 0.7


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} is absent")
def test_the_floor_on_the_whole_judged_set() -> None:
    matches = judged_matches(load_corpus(), load_judgments())
    t = chosen(matches, JUDGED_NOW)
    # Reached: 192/203 relevant (grade 2-3) kept, 40/64 not about it (grade 0) cut. A change
    # that keeps fewer relevant papers, or lets more filler through, fails.
    assert t.kept_share("relevant (2-3)") >= 0.94
    assert t.kept_share("not about it (0)") <= 0.4
    # Without a floor every one of them would be posted.
    assert tally(matches, 0.0).kept_share("not about it (0)") == 1.0
