"""Paper sources: Hugging Face Daily Papers and arXiv, fetched with httpx, parsed purely.

- `hf`, `arxiv`: pure `parse_*` functions for every format, and fetchers over `http.Http`.
- `snapshot`: streaming, resumable import of the Kaggle arXiv snapshot (JSON Lines).
- `refresh`: `Sources` (refresh the store; `lookup_paper` / `search_remote` on demand).
"""

from __future__ import annotations

from bot.sources.arxiv import (
    parse_arxiv_atom,
    parse_arxiv_feed,
    parse_arxiv_feed_items,
    parse_oai_records,
)
from bot.sources.hf import (
    parse_hf_daily,
    parse_hf_html_listing,
    parse_hf_paper,
    parse_hf_paper_page,
    parse_hf_search,
)
from bot.sources.http import Http, Throttle, make_client
from bot.sources.refresh import RefreshReport, SourceReport, Sources
from bot.sources.snapshot import (
    ImportReport,
    ProgressBar,
    import_snapshot,
    iter_snapshot_lines,
    parse_snapshot_line,
)

__all__ = [
    "Http",
    "ImportReport",
    "ProgressBar",
    "RefreshReport",
    "SourceReport",
    "Sources",
    "Throttle",
    "import_snapshot",
    "iter_snapshot_lines",
    "make_client",
    "parse_arxiv_atom",
    "parse_arxiv_feed",
    "parse_arxiv_feed_items",
    "parse_hf_daily",
    "parse_hf_html_listing",
    "parse_hf_paper",
    "parse_hf_paper_page",
    "parse_hf_search",
    "parse_oai_records",
    "parse_snapshot_line",
]
