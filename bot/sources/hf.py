"""Hugging Face papers: the Daily Papers API, paper lookup, search, and the HTML islands.

Parsers (pure) accept every shape seen in the wild (../shared/reference/data-sources.md §1):
- `/api/daily_papers`: a bare array of items `{paper: {...}, numComments, organization, ...}`,
  in the 2024 shape (no `submittedOnDailyAt`, no `ai_*`) and the 2025+ shape;
- `/api/papers/{id}`: one flat paper object;
- `/api/papers/search`: flat items or items nested under `paper`;
- HTML pages: the `data-props` JSON of `div[data-target="DailyPapers"]` (listing) and
  `div[data-target="PaperContent"]` (paper page). The attribute is HTML-escaped JSON; the HTML
  parser unescapes it exactly once, then it is decoded as JSON (never unescaped twice, so a
  literal `&amp;` in a title survives).

Hidden authors are left out (the HF UI omits them). A malformed item is skipped with a logged
reason; a body that is not the expected shape at all raises SourceError.

`HuggingFace` fetches over a shared `Http` (retries, 429 handling).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from bs4 import BeautifulSoup
from bs4.filter import SoupStrainer

from bot.errors import SourceError
from bot.models import PaperIn
from bot.sources.common import (
    arxiv_id,
    collapse,
    load_json,
    parse_iso,
    parse_iso_date,
    skip,
    to_int,
)
from bot.sources.http import Http, expect_ok

SOURCE = "hf"
PAGE_SIZE = 100  # the API's maximum; a day can hold more than the default 50
MAX_PAGES = 20  # a runaway server cannot keep us paging forever
SEARCH_LIMIT = 50


def _github(value: Any) -> str | None:
    """GitHub repo as a URL; some records hold the bare `owner/name`."""
    text = collapse(value)
    if not text:
        return None
    if text.startswith(("http://", "https://")):
        return text
    if text.count("/") == 1 and " " not in text:
        return f"https://github.com/{text}"
    return text


def _org(value: Any) -> str | None:
    if isinstance(value, dict):
        return collapse(value.get("fullname")) or collapse(value.get("name")) or None
    return None


def _keywords(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [k for k in (collapse(v) for v in value) if k]


def _authors(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    names = []
    for author in value:
        if isinstance(author, dict):
            if author.get("hidden") is True:
                continue
            name = collapse(author.get("name"))
        else:
            name = collapse(author)
        if name:
            names.append(name)
    return names


def paper_from_hf(
    paper: Any, item: dict[str, Any] | None = None, *, list_date: date | None = None
) -> PaperIn | None:
    """One HF paper object (+ its daily-list item, if any) as a PaperIn, or None if unusable."""
    if not isinstance(paper, dict):
        skip(SOURCE, "paper is not an object", paper)
        return None
    item = item or {}
    ident = arxiv_id(paper.get("id"))
    if ident is None:
        skip(SOURCE, f"no arXiv id ({paper.get('id')!r})")
        return None
    if paper.get("withdrawnAt"):
        skip(SOURCE, f"{ident.key} is withdrawn", bad=False)
        return None
    title = collapse(paper.get("title")) or collapse(item.get("title"))
    if not title:
        skip(SOURCE, f"{ident.key} has no title")
        return None
    daily = parse_iso_date(paper.get("submittedOnDailyAt"))
    if daily is None and item:
        # 2024 shape: no submittedOnDailyAt; the list we asked for is the best answer, else
        # the item's publishedAt, which was the submission time then.
        daily = list_date or parse_iso_date(item.get("publishedAt"))
    comments = to_int(item.get("numComments"))
    if comments is None:
        comments = to_int(paper.get("numComments"))
    return PaperIn(
        id=ident.key,
        version=ident.version,
        title=title,
        source=SOURCE,
        abstract=collapse(paper.get("summary")) or collapse(item.get("summary")),
        authors=_authors(paper.get("authors")),
        published_at=parse_iso(paper.get("publishedAt")),
        hf_daily_date=daily,
        upvotes=to_int(paper.get("upvotes")),
        comments=comments,
        github_repo=_github(paper.get("githubRepo")),
        github_stars=to_int(paper.get("githubStars")),
        project_page=collapse(paper.get("projectPage")) or None,
        organization=_org(item.get("organization")) or _org(paper.get("organization")),
        ai_summary=collapse(paper.get("ai_summary")) or None,
        ai_keywords=_keywords(paper.get("ai_keywords")),
    )


def _items(data: Any, what: str, *, list_date: date | None = None) -> list[PaperIn]:
    if not isinstance(data, list):
        raise SourceError(f"{SOURCE}: {what} is not a JSON array (got {type(data).__name__})")
    papers = []
    for item in data:
        if not isinstance(item, dict):
            skip(SOURCE, "item is not an object", item)
            continue
        # Daily items and current search items nest the paper; old search items are flat.
        nested = item.get("paper")
        paper = (
            paper_from_hf(nested, item, list_date=list_date)
            if isinstance(nested, dict)
            else paper_from_hf(item, list_date=list_date)
        )
        if paper is not None:
            papers.append(paper)
    return papers


def _decoded(data: str | bytes | Any, what: str) -> Any:
    return load_json(data, f"{SOURCE} {what}") if isinstance(data, str | bytes) else data


def parse_hf_daily(data: str | bytes | Any, list_date: date | None = None) -> list[PaperIn]:
    """`/api/daily_papers` (JSON text or decoded) -> papers. `list_date`: the date asked for."""
    return _items(_decoded(data, "daily papers"), "the daily papers response", list_date=list_date)


def parse_hf_search(data: str | bytes | Any) -> list[PaperIn]:
    """`/api/papers/search` -> papers (flat and `paper`-nested items both accepted)."""
    return _items(_decoded(data, "search"), "the search response")


def parse_hf_paper(data: str | bytes | Any) -> PaperIn | None:
    """`/api/papers/{id}` -> the paper, or None if the object has no usable id/title."""
    decoded = _decoded(data, "paper")
    if not isinstance(decoded, dict):
        raise SourceError(f"{SOURCE}: the paper response is not a JSON object")
    return paper_from_hf(decoded, decoded)


def _island(html: str | bytes, target: str) -> dict[str, Any] | None:
    """The decoded `data-props` of the `data-target=target` hydration island, if any."""
    only = SoupStrainer(attrs={"data-target": target})
    soup = BeautifulSoup(html, "html.parser", parse_only=only)
    node = soup.select_one(f'[data-target="{target}"]')
    if node is None:
        return None
    raw = node.get("data-props")
    if not isinstance(raw, str):
        raise SourceError(f"{SOURCE}: the {target} island has no data-props")
    try:
        props = json.loads(raw)  # the HTML parser already unescaped `&quot;` once
    except ValueError as exc:
        raise SourceError(f"{SOURCE}: the {target} island holds invalid JSON ({exc})") from exc
    if not isinstance(props, dict):
        raise SourceError(f"{SOURCE}: the {target} island is not a JSON object")
    return props


def parse_hf_html_listing(html: str | bytes, list_date: date | None = None) -> list[PaperIn]:
    """A `/papers/date/...` (or week/month) page -> the papers of its DailyPapers island."""
    props = _island(html, "DailyPapers")
    if props is None:
        raise SourceError(f"{SOURCE}: the page has no DailyPapers data (layout changed?)")
    if list_date is None:
        list_date = parse_iso_date(props.get("dateString"))
    return _items(props.get("dailyPapers"), "DailyPapers.dailyPapers", list_date=list_date)


def parse_hf_paper_page(html: str | bytes) -> PaperIn | None:
    """A `/papers/{id}` page -> the paper of its PaperContent island."""
    props = _island(html, "PaperContent")
    if props is None:
        raise SourceError(f"{SOURCE}: the page has no PaperContent data (layout changed?)")
    item: dict[str, Any] = {}
    if isinstance(props.get("comments"), list):
        item["numComments"] = len(props["comments"])
    if isinstance(props.get("submitterOrganization"), dict):
        item["organization"] = props["submitterOrganization"]
    return paper_from_hf(props.get("paper"), item or None)


class HuggingFace:
    """Fetches from the HF API (and its HTML pages as a fallback) through `http`."""

    def __init__(self, http: Http, base_url: str = "https://huggingface.co") -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def daily(self, day: date) -> list[PaperIn]:
        """Every paper on the Daily Papers list of `day`, paging until a short/empty page."""
        papers: list[PaperIn] = []
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            response = await self.http.get(
                f"{self.base_url}/api/daily_papers",
                params={"date": day.isoformat(), "limit": PAGE_SIZE, "p": page},
            )
            expect_ok(response, SOURCE)
            data = load_json(response.content, f"{SOURCE} daily papers")
            batch = parse_hf_daily(data, list_date=day)
            fresh = [p for p in batch if p.id not in seen]
            seen.update(p.id for p in batch)
            papers += fresh
            # A short page is the last; a page that only repeats earlier ids means the server
            # ignores `p`, so stop rather than loop.
            if len(data) < PAGE_SIZE or not fresh:
                break
        return papers

    async def daily_html(self, day: date) -> list[PaperIn]:
        """The same list read from the `/papers/date/<day>` page (when the API fails)."""
        response = await self.http.get(f"{self.base_url}/papers/date/{day.isoformat()}")
        expect_ok(response, SOURCE)
        return parse_hf_html_listing(response.content, list_date=day)

    async def paper(self, key: str) -> PaperIn | None:
        """One paper by arXiv id; None when HF does not know it (404)."""
        response = await self.http.get(f"{self.base_url}/api/papers/{key}")
        if response.status_code == 404:
            return None
        expect_ok(response, SOURCE)
        return parse_hf_paper(response.content)

    async def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[PaperIn]:
        """HF's paper search (title, authors, content); q is cut to the API's 250 chars."""
        response = await self.http.get(
            f"{self.base_url}/api/papers/search",
            params={"q": query[:250], "limit": max(1, min(limit, 120))},
        )
        expect_ok(response, SOURCE)
        return parse_hf_search(response.content)
