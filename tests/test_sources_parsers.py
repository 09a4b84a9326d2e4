"""Parsers of every source format, on the project's own hand-made fixtures (real shapes).

What a user would notice: titles without arXiv's line wraps, TeX kept as written, entities
unescaped exactly once, hidden authors not shown, counts and AI summaries present, and one
broken item never costing the rest of the page.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, strategies as st

from bot.errors import SourceError
from bot.sources.arxiv import (
    parse_arxiv_atom,
    parse_arxiv_feed,
    parse_arxiv_feed_items,
    parse_oai_records,
)
from bot.sources.common import collapse
from bot.sources.hf import (
    parse_hf_daily,
    parse_hf_html_listing,
    parse_hf_paper,
    parse_hf_paper_page,
    parse_hf_search,
)
from bot.sources.snapshot import iter_snapshot_lines, parse_snapshot_line
from tests.conftest import FIXTURES

SRC = FIXTURES / "sources"


def read(name: str) -> bytes:
    return (SRC / name).read_bytes()


# ------------------------------------------------------------------ Hugging Face


def test_hf_daily_2026_shape(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "bot.sources"):
        papers = parse_hf_daily(read("hf_daily_2026.json"))
    assert [p.id for p in papers] == ["2606.00001", "2606.00002"]
    first = papers[0]
    assert first.title == "Direct Preference Optimization for $\\nabla^2$DFT: A Comprehensive Study"
    assert first.authors == ["Ada Lovelace", "Alan Turing"]  # the hidden author is left out
    assert first.hf_daily_date == date(2026, 6, 12)  # submittedOnDailyAt, not publishedAt
    assert first.published_at == datetime(2026, 6, 10, tzinfo=UTC)
    assert (first.upvotes, first.comments) == (42, 3)
    assert first.ai_summary == "DPO works well."
    assert first.ai_keywords == ["DPO", "preference learning"]
    assert first.github_repo == "https://github.com/example/dpo-dft"  # bare owner/name
    assert first.github_stars == 17
    assert first.project_page == "https://example.org/dpo"
    assert first.organization == "Example University"
    # HF API JSON is not HTML-escaped: a literal "&amp;" in the text stays as written.
    assert "52.56\\% on the benchmark &amp; more." in first.abstract
    fresh = papers[1]
    assert fresh.title.startswith("Σ-Mem")
    assert fresh.ai_summary is None and fresh.ai_keywords == []
    assert fresh.github_repo is None and fresh.organization is None
    # The two broken items were skipped, each with a reason.
    reasons = [r.getMessage() for r in caplog.records]
    assert any("no arXiv id" in r for r in reasons)
    assert any("not an object" in r for r in reasons)


def test_hf_daily_2024_shape_uses_the_list_date_asked_for() -> None:
    (paper,) = parse_hf_daily(read("hf_daily_2024.json"), list_date=date(2024, 10, 25))
    assert paper.title == (
        "Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive Loss"
    )
    assert paper.hf_daily_date == date(2024, 10, 25)
    assert paper.comments == 5 and paper.upvotes == 87
    assert paper.abstract == (
        "Contrastive loss is a powerful approach. We propose a tile-based strategy."
    )
    # Without a date asked for, the 2024 item's publishedAt (its submission time) is used.
    (undated,) = parse_hf_daily(read("hf_daily_2024.json"))
    assert undated.hf_daily_date == date(2024, 10, 25)


@pytest.mark.parametrize(
    "body",
    [b"", b'[{"paper": {"id": "2606.0', b"<html>Bad gateway</html>", b'{"error": 1}'],
    ids=["empty", "truncated", "html", "object"],
)
def test_hf_daily_body_that_is_not_a_list_is_a_source_error(body: bytes) -> None:
    with pytest.raises(SourceError, match="hf"):
        parse_hf_daily(body)


def test_hf_paper_lookup_shape() -> None:
    paper = parse_hf_paper(read("hf_paper.json"))
    assert paper is not None
    assert paper.id == "2606.00001" and paper.upvotes == 50
    assert paper.comments is None  # /api/papers/{id} has no numComments: unknown, not 0
    assert paper.hf_daily_date == date(2026, 6, 12)
    with pytest.raises(SourceError):
        parse_hf_paper(b"[1, 2]")


def test_hf_search_accepts_flat_and_nested_items() -> None:
    flat = parse_hf_search(read("hf_search_flat.json"))
    assert [p.id for p in flat] == ["2409.07146"]  # the item with a bad id is skipped
    assert flat[0].title.startswith("Gated Slot Attention")
    nested = parse_hf_search(read("hf_search_nested.json"))
    assert [p.id for p in nested] == ["2305.18290"]
    assert nested[0].comments == 2 and nested[0].upvotes == 60
    assert nested[0].authors == ["Rafael Rafailov"]


def test_hf_listing_page_island_is_unescaped_once() -> None:
    papers = parse_hf_html_listing(read("hf_listing.html"))
    assert [p.id for p in papers] == ["2606.00001", "2606.00002"]
    assert papers[1].title == 'Tom & Jerry <Attention> is "all" you need'
    assert papers[1].hf_daily_date == date(2026, 6, 12)
    # The same text as the API gives: a literal "&amp;" survives one unescape.
    assert papers[0].abstract == parse_hf_daily(read("hf_daily_2026.json"))[0].abstract


def test_hf_paper_page_island() -> None:
    paper = parse_hf_paper_page(read("hf_paper_page.html"))
    assert paper is not None
    assert paper.title == (
        "MCPMark: A Benchmark for Stress-Testing Realistic and Comprehensive MCP Use"
    )
    assert paper.comments == 2
    assert paper.organization == "National University of Singapore"


@pytest.mark.parametrize(
    "html",
    [
        b"<html><body><div>nothing here</div></body></html>",
        b'<div data-target="DailyPapers" data-props="{&quot;dailyPapers&quot;: [">x</div>',
        b'<div data-target="DailyPapers">no props</div>',
    ],
    ids=["no-island", "truncated-json", "no-props"],
)
def test_hf_listing_page_that_changed_layout_is_a_source_error(html: bytes) -> None:
    with pytest.raises(SourceError):
        parse_hf_html_listing(html)


# ------------------------------------------------------------------ arXiv export API


def test_arxiv_api_entries() -> None:
    page = parse_arxiv_atom(read("arxiv_api.xml"))
    assert (page.total, page.start, page.entries) == (3, 0, 3)
    new, old = page.papers  # the malformed third entry is skipped
    assert (new.id, new.version) == ("2606.00001", 2)
    assert new.title == "Direct Preference Optimization for $\\nabla^2$DFT: A Comprehensive Study"
    assert new.abstract.startswith("We study Direct Preference Optimization (DPO) with $0 \\le α")
    # XML entities are unescaped once by the XML parser, TeX kept as written.
    assert "52.56\\% on the benchmark &lt; baseline &amp; more, with Andr\\'e's <trick>." in (
        new.abstract
    )
    assert new.categories == ["cs.CL", "cs.LG"]  # primary first
    assert new.authors == ["Ada Lovelace", "Alan Turing"]
    assert new.published_at == datetime(2026, 6, 10, 9, tzinfo=UTC)
    assert (old.id, old.version) == ("hep-th/9901001", 3)


def test_arxiv_api_error_feed_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="incorrect id format for xyz"):
        parse_arxiv_atom(read("arxiv_api_error.xml"))


def test_arxiv_api_no_results_is_empty() -> None:
    page = parse_arxiv_atom(read("arxiv_api_empty.xml"))
    assert page.papers == [] and page.total == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"<feed xmlns='http://www.w3.org/2005/Atom'><entry>", b"<html>oops</html>"],
    ids=["empty", "truncated", "not-atom"],
)
def test_arxiv_api_malformed_body_is_a_source_error(body: bytes) -> None:
    with pytest.raises(SourceError, match="arxiv"):
        parse_arxiv_atom(body)


# ------------------------------------------------------------------ arXiv feeds


def test_arxiv_rss_feed_keeps_new_and_cross() -> None:
    items = parse_arxiv_feed_items(read("arxiv_rss.xml"))
    assert [(i.paper.id, i.paper.version, i.announce_type) for i in items] == [
        ("2606.00001", 1, "new"),
        ("2606.00003", 2, "cross"),
        ("1901.00001", 4, "replace"),
    ]
    papers = parse_arxiv_feed(read("arxiv_rss.xml"))
    assert [p.id for p in papers] == ["2606.00001", "2606.00003"]
    new, cross = papers
    assert new.abstract == "We study Direct Preference Optimization (DPO)."  # prefix removed
    assert new.authors == ["Ada Lovelace", "Alan Turing"]  # double space collapsed
    assert new.categories == ["cs.CL", "cs.LG"]
    assert new.published_at == datetime(2026, 6, 12, 4, tzinfo=UTC)  # -0400 to UTC
    assert cross.title == "Tom & Jerry <Attention>: Cross-listed from Statistics"
    assert cross.abstract == "Cross-listed with Paulo Andr\\'e's method & 5 < 6."
    assert cross.authors == ["Paulo Andr\\'e Lima de Castro", "Ratna Kandala"]


def test_arxiv_atom_feed() -> None:
    items = parse_arxiv_feed_items(read("arxiv_atom_feed.xml"))
    assert [(i.paper.id, i.announce_type) for i in items] == [
        ("2606.00004", "new"),
        ("2512.00009", "replace-cross"),
    ]
    assert items[0].paper.authors == ["Grace Hopper", "Edsger W. Dijkstra"]
    assert items[0].paper.abstract == "The Atom variant of the listing feed."
    assert items[1].paper.published_at is None  # a replacement's date is not the paper's


def test_empty_feed_on_a_weekend_is_normal() -> None:
    assert parse_arxiv_feed(read("arxiv_feed_empty.xml")) == []


def test_malformed_feed_is_a_source_error() -> None:
    with pytest.raises(SourceError):
        parse_arxiv_feed(read("arxiv_rss.xml")[:700])
    with pytest.raises(SourceError, match="neither RSS nor Atom"):
        parse_arxiv_feed(b"<html><body>maintenance</body></html>")


# ------------------------------------------------------------------ OAI-PMH


def test_oai_list_records() -> None:
    page = parse_oai_records(read("oai_list.xml"))
    (paper,) = page.papers  # the deleted record is left out
    assert (paper.id, paper.version) == ("2606.00005", 2)
    assert paper.title == "Harvested Through OAI-PMH"
    assert paper.authors == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert paper.abstract == 'An abstract with "quotes" and a wrap.'
    assert paper.published_at == datetime(2026, 6, 1, 10, tzinfo=UTC)  # v1 date
    assert (page.resumption_token, page.complete_list_size) == ("abc|1001", 1200)


def test_oai_errors() -> None:
    body = (
        b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><error code="%s">x</error>'
        b"</OAI-PMH>"
    )
    assert parse_oai_records(body % b"noRecordsMatch").papers == []
    with pytest.raises(SourceError, match="badResumptionToken"):
        parse_oai_records(body % b"badResumptionToken")


# ------------------------------------------------------------------ Kaggle snapshot


def test_snapshot_lines(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "bot.sources"):
        rows = list(iter_snapshot_lines(SRC / "snapshot.jsonl"))
    papers = [p for _, p in rows if p is not None]
    assert [p.id for p in papers] == ["0704.0001", "hep-th/9901001", "2305.18290"]
    assert len(rows) == 5  # the blank line is not a record; two bad lines are None
    first, old, dpo = papers
    assert first.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert first.abstract == (
        "A fully differential calculation in $\\Lambda_{\\alpha}$ QCD is presented."
    )
    assert first.authors == ["C. Balázs", "E. L. Berger"]  # authors_parsed: TeX decoded
    assert (first.version, first.published_at) == (2, datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC))
    assert old.categories == ["hep-th", "math.CO"]
    assert old.authors == ["Ileana Streinu", "Louis Theran Jr"]
    assert dpo.version == 3 and dpo.source == "arxiv"
    assert rows[-1][0] == (SRC / "snapshot.jsonl").stat().st_size
    reasons = " ".join(r.getMessage() for r in caplog.records)
    assert "not valid JSON" in reasons and "not an arXiv id" in reasons


def test_snapshot_line_without_authors_parsed_splits_the_string() -> None:
    line = json.dumps(
        {"id": "0704.0002", "title": "T", "abstract": "A", "authors": "A. One, B. Two and C. Three"}
    )
    paper = parse_snapshot_line(line)
    assert paper is not None
    assert paper.authors == ["A. One", "B. Two", "C. Three"]
    assert paper.published_at is None and paper.categories == []


@given(st.text(alphabet=st.sampled_from("ab é\n\t\r\x0b\x1c\u00a0\u2009\u3000$\\"), max_size=40))
def test_collapse_is_split_join(text: str) -> None:
    """The fast path of `collapse` gives exactly `" ".join(text.split())`."""
    assert collapse(text) == " ".join(text.split())
