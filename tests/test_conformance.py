"""Conformance: the parsers read every real capture in ../shared/fixtures as SOURCES.md says.

Counts and fields below are the ones SOURCES.md states for each file. The test skips only
when that folder is absent (CI always has it); a new capture in a known folder without a
check here fails, so nothing there goes unparsed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import SourceError
from bot.sources.arxiv import parse_arxiv_atom, parse_arxiv_feed_items, parse_oai_records
from bot.sources.hf import paper_from_hf, parse_hf_daily, parse_hf_paper_page
from bot.sources.snapshot import iter_snapshot_lines
from tests.conftest import SHARED_FIXTURES

pytestmark = pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} is absent")

FOLDERS = ("hf_api", "hf_html", "arxiv_api", "arxiv_rss", "arxiv_oai", "kaggle")


def body(folder: str, name: str) -> bytes:
    return (SHARED_FIXTURES / folder / name).read_bytes()


# ------------------------------------------------------------------ hf_api


def check_daily_2026_06_12(data: bytes) -> None:
    raw = json.loads(data)
    papers = parse_hf_daily(data)
    assert len(raw) == 30 and len(papers) == 30  # every paper submitted on 2026-06-12
    assert {p.hf_daily_date for p in papers} == {date(2026, 6, 12)}
    assert all(p.ai_summary and p.ai_keywords for p in papers)  # 30/30 on 06-12
    assert sum(1 for p in papers if p.github_repo) == 16
    assert all(p.github_stars is not None for p in papers if p.github_repo)
    assert sum(1 for p in papers if p.project_page) == 13
    assert sum(1 for p in papers if p.organization) == 16
    # 202 author objects, one hidden (on 2606.12575): 201 shown.
    assert sum(len(item["paper"]["authors"]) for item in raw) == 202
    assert sum(len(p.authors) for p in papers) == 201
    hidden = next(p for p in papers if p.id == "2606.12575")
    raw_hidden = next(i for i in raw if i["paper"]["id"] == "2606.12575")
    assert len(hidden.authors) == len(raw_hidden["paper"]["authors"]) - 1
    assert all("\n" not in p.title and "  " not in p.title for p in papers)
    assert all(p.comments is not None and p.upvotes is not None for p in papers)
    assert max(p.upvotes or 0 for p in papers) <= 118


def check_daily_2026_07_31(data: bytes) -> None:
    papers = parse_hf_daily(data)
    assert len(papers) == 5
    assert all(p.ai_summary is None and p.ai_keywords == [] for p in papers)  # fresh papers
    titles = " ".join(p.title for p in papers)
    assert "Σ-Mem" in titles and "β-OPSD" in titles  # non-ASCII decoded as UTF-8
    assert {p.hf_daily_date for p in papers} == {date(2026, 7, 31)}


# ------------------------------------------------------------------ hf_html


def check_paper_page_html(data: bytes) -> None:
    paper = parse_hf_paper_page(data)
    assert paper is not None and paper.id == "2509.24002"
    assert paper.title == (
        "MCPMark: A Benchmark for Stress-Testing Realistic and Comprehensive MCP Use"
    )  # the "MCP\n  Use" wrap collapsed
    assert "52.56\\% pass@1" in paper.abstract  # TeX escape kept
    assert paper.organization  # from the top-level submitterOrganization
    assert paper.comments is not None


def check_paper_content_props(data: bytes) -> None:
    props = json.loads(data)
    assert set(props) >= {"comments", "paper", "upvoters", "dailyPaperRank"}
    paper = paper_from_hf(props["paper"])
    assert paper is not None and paper.id == "2509.24002"
    html_paper = parse_hf_paper_page(body("hf_html", "paper_page_2509.24002_prettified.html"))
    assert html_paper is not None
    assert (paper.title, paper.abstract) == (html_paper.title, html_paper.abstract)


# ------------------------------------------------------------------ arxiv_api


def api(count: int, total: int | None = None, start: int = 0, **first: Any) -> Callable[..., None]:
    def check(data: bytes) -> None:
        page = parse_arxiv_atom(data)
        assert page.entries == count and len(page.papers) == count
        if total is not None:
            assert page.total == total
        assert page.start == start
        for paper in page.papers:
            assert paper.title and "\n" not in paper.title and "  " not in paper.title
            assert paper.version is not None and paper.published_at is not None
            assert paper.authors and paper.categories
            assert not paper.abstract.startswith(" ")
        if first:
            got = page.papers[0]
            for name, value in first.items():
                assert getattr(got, name) == value, name

    return check


def check_api_testing_100(data: bytes) -> None:
    api(100, 214881)(data)
    ids = {p.id for p in parse_arxiv_atom(data).papers}
    assert {"cs/0503050", "hep-ph/0301050", "gr-qc/0103067"} <= ids  # old-style ids
    text = " ".join(p.title + " " + p.abstract for p in parse_arxiv_atom(data).papers)
    assert "$ω$Test" in text and "$0 \\le α, β\\le 1/8$" in text  # Unicode and TeX kept


def check_api_error(data: bytes) -> None:
    with pytest.raises(SourceError, match="incorrect id format for abc"):
        parse_arxiv_atom(data)


def check_api_paging(data_page1: bytes) -> None:
    page1 = parse_arxiv_atom(data_page1)
    page2 = parse_arxiv_atom(body("arxiv_api", "q_testing_s10_m10_34e56e15aaac.xml"))
    assert (page1.start, page2.start) == (0, 10)
    assert not {p.id for p in page1.papers} & {p.id for p in page2.papers}
    first100 = [
        p.id
        for p in parse_arxiv_atom(body("arxiv_api", "q_testing_s0_m100_cfe7536492ca.xml")).papers
    ]
    assert [p.id for p in page1.papers + page2.papers] == first100[:20]


# ------------------------------------------------------------------ arxiv_rss


def rss(ids_types: list[tuple[str, str]]) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        items = parse_arxiv_feed_items(data)
        assert [(i.paper.id, i.announce_type) for i in items] == ids_types
        for item in items:
            paper = item.paper
            assert paper.version == 1 and paper.title and paper.authors and paper.categories
            assert not paper.abstract.startswith(("arXiv:", "Abstract:"))
            assert "Announce Type" not in paper.abstract
            assert all(a == a.strip() and "  " not in a for a in paper.authors)
            assert paper.published_at is not None

    return check


def check_atom_feed(data: bytes) -> None:
    rss(
        [
            ("2508.13426", "cross"),
            ("2508.13428", "cross"),
            ("2508.13429", "cross"),
            ("2508.13434", "cross"),
            ("2508.13435", "cross"),
            ("2508.14001", "new"),
            ("2508.14002", "new"),
        ]
    )(data)
    items = parse_arxiv_feed_items(data)
    authors = [a for i in items for a in i.paper.authors]
    assert "Paulo Andr\\'e Lima de Castro" in authors  # TeX accent kept
    assert items[0].paper.published_at == datetime(2025, 8, 20, 4, 0, tzinfo=UTC)


def check_rss_cl(data: bytes) -> None:
    rss([("2604.22002", "new"), ("2604.22027", "new"), ("2604.22038", "new")])(data)
    authors = parse_arxiv_feed_items(data)[0].paper.authors
    assert "Ratna Kandala" in authors and "Deepti" in authors  # "Kandala,  Deepti"


# ------------------------------------------------------------------ arxiv_oai


def check_oai_list(data: bytes) -> None:
    page = parse_oai_records(data)
    assert len(page.papers) == 6
    assert page.resumption_token == "726959|1001" and page.complete_list_size == 58011
    assert any('" stiff "' in p.abstract for p in page.papers)  # &quot; unescaped once
    first = page.papers[0]
    assert first.id == "0704.0471" and first.authors[-1] == "G.A. Souliotis"
    assert first.categories == ["nucl-ex", "nucl-th"]
    assert page.papers[1].version == 4  # the version history's last entry


def check_oai_get(data: bytes) -> None:
    (paper,) = parse_oai_records(data).papers
    assert paper.id == "1302.2146"
    assert paper.published_at == datetime(2013, 2, 8, 21, 0, 1, tzinfo=UTC)


def oai_error(code: str) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        if code == "noRecordsMatch":
            assert parse_oai_records(data).papers == []
        else:
            with pytest.raises(SourceError, match=code):
                parse_oai_records(data)

    return check


# ------------------------------------------------------------------ kaggle


def check_kaggle(_data: bytes) -> None:
    path = SHARED_FIXTURES / "kaggle" / "arxiv-metadata-oai-snapshot_first200.jsonl"
    papers = [p for _, p in iter_snapshot_lines(path) if p is not None]
    assert len(papers) == 200
    assert papers[0].id == "0704.0001" and papers[-1].id == "0704.0200"
    assert papers[0].title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert papers[0].authors[0] == "C. Balázs"  # from authors_parsed, TeX decoded
    assert all(p.abstract and not p.abstract.startswith(" ") for p in papers)
    assert all(p.categories and p.published_at and p.version for p in papers)


CHECKS: dict[str, Callable[[bytes], None]] = {
    "hf_api/daily_papers_2026-06-12_sotawhat_30items.json": check_daily_2026_06_12,
    "hf_api/daily_papers_2026-07-31_allnewsai_5items.json": check_daily_2026_07_31,
    "hf_html/paper_page_2509.24002_prettified.html": check_paper_page_html,
    "hf_html/paper_page_2509.24002_PaperContent_data-props.json": check_paper_content_props,
    "arxiv_api/q_testing_s0_m100_cfe7536492ca.xml": check_api_testing_100,
    "arxiv_api/q_testing_s0_m10_bc5a6c384fe9.xml": check_api_paging,
    "arxiv_api/q_testing_s10_m10_34e56e15aaac.xml": api(10, 214881, start=10),
    "arxiv_api/id_astro-ph_0601001_s0_m100_3150dca9dc76.xml": api(1, 1, id="astro-ph/0601001"),
    "arxiv_api/id_quant-ph_0201082v1_s0_m100_86989fe779ef.xml": api(
        1, 1, id="quant-ph/0201082", version=1
    ),
    "arxiv_api/id_2104.12255v1_s0_m100_6ae69987ffe1.xml": api(1, 1, id="2104.12255", title="0"),
    "arxiv_api/id_1605.08386_s0_m100_199195aa31ad.xml": api(
        1, 1, id="1605.08386", title="Heat-bath random walks with Markov bases"
    ),
    "arxiv_api/id_0808.05394_1707.08567_s0_m100_42e5aa0ec3af.xml": api(1, 1, id="1707.08567"),
    "arxiv_api/id_0000.0000_s0_m100_8b51d9633a68.xml": api(0, 0),
    "arxiv_api/id_abc_s0_m100_b79c8dcf6bc3.xml": check_api_error,
    "arxiv_api/legacy2016_id_list_1111.2011v2.xml": api(1, 1, id="1111.2011", version=2),
    "arxiv_api/legacy2016_search_au_del_maestro.xml": api(10, 31),
    "arxiv_api/legacy2016_search_au_del_maestro_ANDNOT.xml": api(10, 24),
    "arxiv_api/sotawhat_all_transformer_AND_cat_cs.LG_5.xml": api(5, 28946),
    "arxiv_rss/atom_feed_cs.AI_2025-08-20_zotero-arxiv-daily.xml": check_atom_feed,
    "arxiv_rss/rss_cs.AI_distill.xml": rss(
        [("2604.21935", "new"), ("2604.21936", "new"), ("2604.21937", "new")]
    ),
    "arxiv_rss/rss_cs.CL_distill.xml": check_rss_cl,
    "arxiv_rss/rss_cs.LG_distill.xml": rss(
        [("2604.21952", "new"), ("2604.21953", "new"), ("2604.21956", "new")]
    ),
    "arxiv_oai/oai2015_GetRecordResponse.xml": check_oai_get,
    "arxiv_oai/oai2015_ListRecordsResponse.xml": check_oai_list,
    "arxiv_oai/oai2015_ErrorResponseNoRecordsMatch.xml": oai_error("noRecordsMatch"),
    "arxiv_oai/oai2015_ErrorResponseBadResumptionToken.xml": oai_error("badResumptionToken"),
    "arxiv_oai/oai2015_ErrorResponseIdDoesNotExist.xml": oai_error("idDoesNotExist"),
    "arxiv_oai/oai2015_ErrorResponseBadArgument.xml": oai_error("badArgument"),
    "kaggle/arxiv-metadata-oai-snapshot_first200.jsonl": check_kaggle,
}


def _captures() -> list[str]:
    if not SHARED_FIXTURES.is_dir():
        return []
    return sorted(
        str(path.relative_to(SHARED_FIXTURES))
        for folder in FOLDERS
        for path in (SHARED_FIXTURES / folder).glob("*")
        if path.is_file()
    )


@pytest.mark.parametrize("name", _captures())
def test_capture_parses_as_sources_md_says(name: str) -> None:
    assert name in CHECKS, f"{name} is a new capture: add what SOURCES.md says it holds"
    CHECKS[name](body(*Path(name).parts))


def test_every_folder_is_there() -> None:
    for folder in FOLDERS:
        assert (SHARED_FIXTURES / folder).is_dir(), folder
