"""Venues from arXiv comments and journal references: what a reader of a card or a `venue:`
filter relies on. Accepted papers are found with their year; a paper merely submitted, under
review, or naming a venue in passing is not "at" that venue; hostile text never raises.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from bot.sources.arxiv import parse_arxiv_atom, parse_arxiv_feed_items, parse_oai_records
from bot.venues import MAX_TEXT, Venue, venue_of
from tests.conftest import SHARED_FIXTURES

ACCEPTED = [
    ("Accepted at NeurIPS 2025", Venue("NeurIPS", 2025)),
    ("To appear in ICLR'26", Venue("ICLR", 2026)),
    ("ACL 2024 Findings", Venue("ACL", 2024, "findings")),
    ("Findings of EMNLP 2024", Venue("EMNLP", 2024, "findings")),
    ("Camera-ready for CVPR 2026", Venue("CVPR", 2026)),
    ("12 pages, 5 figures. Accepted to EMNLP 2024 (main conference)", Venue("EMNLP", 2024)),
    ("ICLR 2025 (Oral)", Venue("ICLR", 2025)),
    ("NeurIPS 2025 spotlight; code at https://github.com/a/b", Venue("NeurIPS", 2025)),
    ("Accepted by AAAI-25", Venue("AAAI", 2025)),
    ("accepted at COLM 2025", Venue("COLM", 2025)),
    ("Published in Transactions on Machine Learning Research (09/2025)", Venue("TMLR", 2025)),
    (
        "Accepted at the NeurIPS 2025 Workshop on Foundation Models",
        Venue("NeurIPS", 2025, "workshop"),
    ),
    ("Submitted to ICML 2025; accepted at NeurIPS 2025", Venue("NeurIPS", 2025)),
    ("NAACL-HLT 2019", Venue("NAACL", 2019)),
    ("Interspeech 2024", Venue("Interspeech", 2024)),
    ("In Proc. of the 16th IEEE ICST 2023", Venue("ICST", 2023)),
    ("Accepted at NIPS 2017", Venue("NeurIPS", 2017)),
    ("to appear at\n  the Conference on Robot Learning (CoRL) 2024", Venue("CoRL", 2024)),
    ("Accepted to ICRA2026", Venue("ICRA", 2026)),
    ("MICCAI 2025 early accept", Venue("MICCAI", 2025)),
    ("Accepted for publication in TACL", Venue("TACL", None)),
    ("Oral presentation at NeurIPS 2023", Venue("NeurIPS", 2023)),
    ("LREC-COLING 2024", Venue("COLING", 2024)),
    ("Published as a conference paper at ICLR 2025", Venue("ICLR", 2025)),
    ("Accepted to the Findings of ACL 2024", Venue("ACL", 2024, "findings")),
]

NOT_ACCEPTED = [
    "we compare to the NeurIPS 2023 winner",
    "submitted to ICML",
    "Submitted to NeurIPS 2025, under review",
    "Under review at ICLR 2026",
    "In submission to ACL 2025",
    "Extended version of our ICLR 2024 paper",
    "Preprint. Under review.",
    "Preprint submitted to Elsevier",
    "9 pages, 3 figures",
    "Our model beats the CVPR 2024 challenge baseline",
    "code: https://github.com/icml/iclr",
    "",
]


@pytest.mark.parametrize(("comment", "venue"), ACCEPTED)
def test_an_accepted_paper_is_at_its_venue(comment: str, venue: Venue) -> None:
    assert venue_of(comment, None) == venue


@pytest.mark.parametrize("comment", NOT_ACCEPTED)
def test_a_submission_or_a_mention_is_no_venue(comment: str) -> None:
    assert venue_of(comment, None) is None


def test_the_journal_reference_wins_and_unknown_journals_are_not_guessed() -> None:
    ref = "Advances in Neural Information Processing Systems 36 (NeurIPS 2023)"
    assert venue_of("Submitted to ICML 2023", ref) == Venue("NeurIPS", 2023)
    assert venue_of("Accepted at ICML 2024", "Phys.Rev.D76:013009,2007") == Venue("ICML", 2024)
    assert venue_of(None, "Phys.Rev.D76:013009,2007") is None
    assert venue_of(
        None, "J. Mach. Learn. Res.; Journal of Machine Learning Research 25 (2024)"
    ) == Venue("JMLR", 2024)


def test_labels_read_as_on_a_card() -> None:
    assert Venue("NeurIPS", 2025).label() == "NeurIPS 2025"
    assert Venue("EMNLP", 2024, "findings").label() == "EMNLP 2024 Findings"
    assert Venue("ICML", None, "workshop").label() == "ICML Workshop"


def test_huge_and_hostile_text_is_read_up_to_the_cap_and_never_raises() -> None:
    assert venue_of("x\x00" * 1_000_000, "(" * 1_000_000) is None
    padded = "Accepted at NeurIPS 2025" + "\x00é😀\ud800" * 100_000
    assert venue_of(padded) == Venue("NeurIPS", 2025)
    # Text past the cap is not read: the result is what the first MAX_TEXT characters say.
    late = " " * MAX_TEXT + "Accepted at ICML 2024"
    assert venue_of(late) is None
    # Near-misses that make backtracking regexes blow up.
    assert venue_of("accepted at " + "ICML " * 20_000 + "!") == Venue("ICML", None)
    assert venue_of("a" * 5 + ". " * 500_000) is None
    assert venue_of("Accepted at ICML '" + "9" * 100_000) == Venue("ICML", None)


def test_letters_that_fold_to_ascii_only_when_ignoring_case_never_raise() -> None:
    """The long s matches "s" and the dotted capital I matches "i" in a case-insensitive
    pattern, but neither lowercases to the ASCII letter: such a name is no known venue (it
    used to raise KeyError, and a merge reading that comment failed its whole refresh)."""
    assert venue_of("Accepted at RS\u017f 2024") is None
    assert venue_of("Accepted at \u0130CLR 2024", "\u0130CML 2023") is None
    assert venue_of("Accepted at \u212aDD 2024") is None  # the Kelvin sign is no K either
    assert venue_of("Accepted at icml 2024") == Venue("ICML", 2024)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), st.text(), st.integers(), st.binary()),
    st.one_of(st.none(), st.text(max_size=300)),
)
def test_any_input_gives_a_venue_or_none(comment: object, ref: object) -> None:
    found = venue_of(comment, ref)
    assert found is None or (isinstance(found, Venue) and found.label())


# ------------------------------------------------------------------ the captured feeds


def _captured() -> list[tuple[str | None, str | None]]:
    """Every (comment, journal_ref) our parsers read from the shared arXiv captures."""
    pairs: list[tuple[str | None, str | None]] = []
    for path in sorted((SHARED_FIXTURES / "arxiv_api").glob("*.xml")):
        try:
            pairs += [
                (p.arxiv_comment, p.journal_ref) for p in parse_arxiv_atom(path.read_bytes()).papers
            ]
        except Exception:  # the API's error feeds: no papers in them
            continue
    for path in sorted((SHARED_FIXTURES / "arxiv_oai").glob("*.xml")):
        try:
            pairs += [
                (p.arxiv_comment, p.journal_ref)
                for p in parse_oai_records(path.read_bytes()).papers
            ]
        except Exception:
            continue
    for path in sorted((SHARED_FIXTURES / "arxiv_rss").glob("*.xml")):
        pairs += [(None, i.paper.journal_ref) for i in parse_arxiv_feed_items(path.read_bytes())]
    for path in sorted((SHARED_FIXTURES / "kaggle").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            obj = json.loads(line)
            pairs.append((obj.get("comments"), obj.get("journal-ref")))
    return pairs


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} is absent")
def test_the_api_parser_keeps_comments_and_references() -> None:
    body = (SHARED_FIXTURES / "arxiv_api" / "q_testing_s0_m100_cfe7536492ca.xml").read_bytes()
    papers = parse_arxiv_atom(body).papers
    assert len(papers) == 100
    assert sum(1 for p in papers if p.arxiv_comment) == 97  # AX-3
    assert sum(1 for p in papers if p.journal_ref) == 18  # AX-4
    assert all("\n" not in (p.arxiv_comment or "") for p in papers)


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} is absent")
def test_every_captured_comment_and_reference() -> None:
    pairs = _captured()
    comments = [c for c, _ in pairs if c]
    assert len(comments) >= 200 and sum(1 for _, r in pairs if r) >= 40
    found = {(c, r): venue_of(c, r) for c, r in pairs}
    # Known accepted papers of the software-testing query (q_testing_*) are found, with year.
    by_comment = {c: v for (c, _r), v in found.items() if c}
    assert by_comment[
        "Accepted to the International Conference of Software Testing (ICST2023)"
    ] == Venue("ICST", 2023)
    assert by_comment[
        "Accepted by the 32nd ACM SIGSOFT International Symposium on Software Testing and "
        "Analysis (ISSTA 2023)"
    ] == Venue("ISSTA", 2023)
    assert by_comment[
        "To appear at the IEEE International Conference on Software Testing, Verification, "
        "and Validation (ICST 2022)"
    ] == Venue("ICST", 2022)
    # A submission is not an acceptance.
    assert (
        by_comment[
            "(v0), Submitted to IEEE International Workshop on Automated and Intelligent Software "
            "Testing (AIST 2020)"
        ]
        is None
    )
    # Every venue found is either in the comment's own words or the reference's.
    for (comment, ref), venue in found.items():
        if venue is not None:
            text = f"{comment or ''} {ref or ''}".lower()
            assert venue.year is None or str(venue.year) in text or f"'{venue.year % 100}" in text
    hits = sum(1 for v in found.values() if v is not None)
    assert 20 <= hits <= len(comments) // 2  # many, but far from every comment


def test_addresses_name_no_venue() -> None:
    assert venue_of("Published at http://www.imstat.org/aap/ by the IMS") is None
    assert venue_of("Accepted; code at https://github.com/x/ICLR2025") is None
    assert venue_of("Accepted at the workshop@ICLR 2025") == Venue("ICLR", 2025, "workshop")
