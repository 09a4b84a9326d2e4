"""The relevance corpus: real captured papers, read where they are (never copied here).

The papers come from `../shared/fixtures` (Hugging Face Daily Papers JSON, arXiv API and
listing feeds, OAI-PMH, the Kaggle snapshot sample and one HF paper page), parsed by the
project's own parsers, plus the bundled demo set (`bot/data/demo_papers.json`). Only the
judgments (query -> arXiv id -> grade) live in this repository (`judgments.json`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.demo import load_demo_papers
from bot.errors import SourceError
from bot.models import PaperIn
from bot.sources.arxiv import parse_arxiv_atom, parse_arxiv_feed, parse_oai_records
from bot.sources.hf import parse_hf_daily, parse_hf_paper_page
from bot.sources.snapshot import iter_snapshot_lines

HERE = Path(__file__).resolve().parent
SHARED_FIXTURES = HERE.parents[2] / "shared" / "fixtures"
JUDGMENTS = HERE / "judgments.json"


def load_corpus(fixtures: Path | None = SHARED_FIXTURES) -> list[PaperIn]:
    """Every paper of the captures (when `fixtures` exists) and of the demo set, one per id."""
    papers: dict[str, PaperIn] = {}

    def add(items: list[PaperIn]) -> None:
        for paper in items:
            # A later capture of the same paper (a feed after the API) does not replace it:
            # the first source read is the richest (HF JSON has keywords and summaries).
            papers.setdefault(paper.id, paper)

    if fixtures is not None and fixtures.is_dir():
        for path in sorted((fixtures / "hf_api").glob("*.json")):
            add(parse_hf_daily(path.read_bytes()))
        for path in sorted((fixtures / "hf_html").glob("*.html")):
            page = parse_hf_paper_page(path.read_bytes())
            add([page] if page is not None else [])
        for path in sorted((fixtures / "arxiv_api").glob("*.xml")):
            try:
                add(parse_arxiv_atom(path.read_bytes()).papers)
            except SourceError:
                continue  # the captured error feed (a refused id) holds no paper
        for path in sorted((fixtures / "arxiv_rss").glob("*.xml")):
            add(
                parse_arxiv_feed(
                    path.read_bytes(), keep=("new", "cross", "replace", "replace-cross")
                )
            )
        for path in sorted((fixtures / "arxiv_oai").glob("*ListRecords*.xml")):
            add(parse_oai_records(path.read_bytes()).papers)
        for path in sorted((fixtures / "kaggle").glob("*.jsonl")):
            add([p for _, p in iter_snapshot_lines(path, reject=_quiet) if p is not None])
    add(load_demo_papers(as_published=True))  # the dates the judgments were made on
    return list(papers.values())


def _quiet(reason: str, item: Any = None) -> None:
    """A skipped snapshot line is not news in a benchmark."""


def load_judgments(path: Path = JUDGMENTS) -> list[dict[str, Any]]:
    """[{"q": query, "kind": ..., "grades": {arxiv id: 0-3}}, ...] in file order."""
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["queries"]
    return data
