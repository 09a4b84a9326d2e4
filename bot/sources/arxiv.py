"""arXiv: the export API (Atom), the daily RSS 2.0 / Atom feeds, and OAI-PMH records.

Parsers (pure; formats in ../shared/reference/data-sources.md §2):
- `parse_arxiv_atom`: `export.arxiv.org/api/query` responses, 2016 and 2026 output. The API's
  error feed (HTTP 400: one entry titled "Error" with an `api/errors#...` id) becomes a
  SourceError carrying arXiv's message.
- `parse_arxiv_feed`: `rss.arxiv.org/{rss,atom}/<cats>`. Items announced as `new` and `cross`
  are papers to add. `replace` / `replace-cross` items are new versions of older papers: the
  parser returns them too (see `parse_arxiv_feed_items`), and the refresh uses them only to
  update papers the store already has, so a replaced 2019 paper never shows up as "new" in a
  digest. An empty feed (weekends, holidays) is normal and gives [].
- `parse_oai_records`: OAI-PMH ListRecords/GetRecord in the `arXivRaw` or `arXiv` formats.

XML is parsed with the standard library (entities in the XML are unescaped by the parser,
exactly once; expat refuses entity-expansion bombs). Whitespace is collapsed, TeX kept.

`Arxiv` fetches through an `Http` whose `Throttle` keeps arXiv's one request per 3 seconds.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from bot.errors import SourceError
from bot.models import PaperIn
from bot.sources.common import (
    arxiv_id,
    collapse,
    parse_iso,
    parse_rfc822,
    skip,
    split_authors,
)
from bot.sources.http import Http, expect_ok

logger = logging.getLogger(__name__)

SOURCE = "arxiv"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
DC = "{http://purl.org/dc/elements/1.1/}"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
ARXIV_RAW = "{http://arxiv.org/OAI/arXivRaw/}"
ARXIV_OAI = "{http://arxiv.org/OAI/arXiv/}"

ADD_TYPES = ("new", "cross")  # announce types that are papers to add
UPDATE_TYPES = ("replace", "replace-cross")  # new versions of papers announced before
API_PAGE_SIZE = 200
API_MAX_RESULTS = 30_000  # start + max_results may not exceed this
_ANNOUNCE_RE = re.compile(
    r"^\s*arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:)?\s*", re.I
)


def _xml(body: str | bytes, what: str) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise SourceError(f"{SOURCE}: {what} is not well-formed XML ({exc})") from exc


def _text(node: ET.Element | None) -> str:
    return collapse("".join(node.itertext())) if node is not None else ""


# ------------------------------------------------------------------ export API


@dataclass
class ArxivPage:
    """One page of export API results."""

    papers: list[PaperIn]
    total: int | None = None
    start: int = 0
    per_page: int | None = None
    entries: int = 0  # entries in the body, usable or not (for paging)


def parse_arxiv_atom(body: str | bytes) -> ArxivPage:
    """An export API response -> papers and paging numbers; its error feed -> SourceError."""
    root = _xml(body, "the API response")
    if root.tag != f"{ATOM}feed":
        raise SourceError(f"{SOURCE}: the API response is not an Atom feed (<{root.tag}>)")
    entries = root.findall(f"{ATOM}entry")
    for entry in entries:
        ident = entry.findtext(f"{ATOM}id") or ""
        if "/api/errors" in ident:
            message = _text(entry.find(f"{ATOM}summary")) or ident
            raise SourceError(f"{SOURCE}: the API refused the request: {message}")
    papers = []
    for entry in entries:
        paper = _api_entry(entry)
        if paper is not None:
            papers.append(paper)
    return ArxivPage(
        papers=papers,
        total=_int(root.findtext(f"{OPENSEARCH}totalResults")),
        start=_int(root.findtext(f"{OPENSEARCH}startIndex")) or 0,
        per_page=_int(root.findtext(f"{OPENSEARCH}itemsPerPage")),
        entries=len(entries),
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def _api_entry(entry: ET.Element) -> PaperIn | None:
    raw_id = entry.findtext(f"{ATOM}id")
    ident = arxiv_id(raw_id)
    if ident is None:
        skip(SOURCE, f"entry id {raw_id!r} is not an arXiv id")
        return None
    title = _text(entry.find(f"{ATOM}title"))
    if not title:
        skip(SOURCE, f"{ident.key} has no title")
        return None
    primary = entry.find(f"{ARXIV}primary_category")
    categories = [primary.get("term", "")] if primary is not None else []
    categories += [c.get("term", "") for c in entry.findall(f"{ATOM}category")]
    return PaperIn(
        id=ident.key,
        version=ident.version,
        title=title,
        source=SOURCE,
        abstract=_text(entry.find(f"{ATOM}summary")),
        authors=[
            name
            for name in (_text(a.find(f"{ATOM}name")) for a in entry.findall(f"{ATOM}author"))
            if name
        ],
        categories=_unique(categories),
        published_at=parse_iso(entry.findtext(f"{ATOM}published")),
        arxiv_comment=_text(entry.find(f"{ARXIV}comment")) or None,
        journal_ref=_text(entry.find(f"{ARXIV}journal_ref")) or None,
    )


def _unique(values: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        value = value.strip()
        if value:
            seen.setdefault(value, None)
    return list(seen)


# ------------------------------------------------------------------ RSS / Atom feeds


@dataclass
class FeedItem:
    paper: PaperIn
    announce_type: str  # new | cross | replace | replace-cross | "" (unknown)


def parse_arxiv_feed_items(body: str | bytes) -> list[FeedItem]:
    """Every usable item of an RSS 2.0 or Atom listing feed, with its announce type."""
    root = _xml(body, "the feed")
    if root.tag == "rss":
        channel = root.find("channel")
        nodes = channel.findall("item") if channel is not None else []
        rss = True
    elif root.tag == f"{ATOM}feed":
        nodes = root.findall(f"{ATOM}entry")
        rss = False
    else:
        raise SourceError(f"{SOURCE}: the feed is neither RSS nor Atom (<{root.tag}>)")
    items = []
    for node in nodes:
        item = _feed_item(node, rss)
        if item is not None:
            items.append(item)
    return items


def parse_arxiv_feed(body: str | bytes, keep: Sequence[str] = ADD_TYPES) -> list[PaperIn]:
    """The papers of a listing feed whose announce type is in `keep` (new and cross)."""
    return [i.paper for i in parse_arxiv_feed_items(body) if i.announce_type in keep]


def _feed_item(node: ET.Element, rss: bool) -> FeedItem | None:
    if rss:
        raw_id = node.findtext("guid") or node.findtext("link")
        summary = node.findtext("description") or ""
        title = _text(node.find("title"))
        categories = [c.text or "" for c in node.findall("category")]
        published = parse_rfc822(node.findtext("pubDate"))
    else:
        raw_id = node.findtext(f"{ATOM}id")
        summary = node.findtext(f"{ATOM}summary") or ""
        title = _text(node.find(f"{ATOM}title"))
        categories = [c.get("term", "") for c in node.findall(f"{ATOM}category")]
        published = parse_iso(node.findtext(f"{ATOM}published"))
    announce = (node.findtext(f"{ARXIV}announce_type") or "").strip().lower()
    match = _ANNOUNCE_RE.match(summary)
    if match:
        # The description repeats the versioned id and the type; prefer it for the version.
        announce = announce or match.group("type").lower()
        raw_id = match.group("id") if arxiv_id(match.group("id")) else raw_id
        summary = summary[match.end() :]
    ident = arxiv_id(raw_id)
    if ident is None:
        skip(SOURCE, f"feed item id {raw_id!r} is not an arXiv id")
        return None
    if not title:
        skip(SOURCE, f"feed item {ident.key} has no title")
        return None
    paper = PaperIn(
        id=ident.key,
        version=ident.version,
        title=title,
        source=SOURCE,
        abstract=collapse(summary),
        # All authors in one comma-joined dc:creator; split on commas and "and".
        authors=split_authors(node.findtext(f"{DC}creator") or ""),
        categories=_unique(categories),
        # A new or cross item is announced with its paper; a replacement is not.
        published_at=published if announce in ADD_TYPES else None,
        # The listing feeds carry no comment (AX-5): only the API has it.
        journal_ref=_text(node.find(f"{ARXIV}journal_reference")) or None,
    )
    return FeedItem(paper, announce)


# ------------------------------------------------------------------ OAI-PMH


@dataclass
class OaiPage:
    papers: list[PaperIn] = field(default_factory=list)
    resumption_token: str | None = None
    complete_list_size: int | None = None


def parse_oai_records(body: str | bytes) -> OaiPage:
    """ListRecords / GetRecord (arXivRaw or arXiv metadata) -> papers and resumption token.

    `noRecordsMatch` is an empty page (nothing changed since `from`); other OAI errors raise.
    """
    root = _xml(body, "the OAI-PMH response")
    if root.tag != f"{OAI}OAI-PMH":
        raise SourceError(f"{SOURCE}: not an OAI-PMH response (<{root.tag}>)")
    error = root.find(f"{OAI}error")
    if error is not None:
        code = error.get("code", "")
        if code == "noRecordsMatch":
            return OaiPage()
        raise SourceError(f"{SOURCE}: OAI-PMH error {code}: {_text(error)}")
    page = OaiPage()
    for record in root.iter(f"{OAI}record"):
        header = record.find(f"{OAI}header")
        if header is not None and header.get("status") == "deleted":
            continue
        meta = record.find(f"{OAI}metadata")
        paper = _oai_record(meta[0]) if meta is not None and len(meta) else None
        if paper is not None:
            page.papers.append(paper)
    token = root.find(f".//{OAI}resumptionToken")
    if token is not None:
        page.resumption_token = (token.text or "").strip() or None
        page.complete_list_size = _int(token.get("completeListSize"))
    return page


def _oai_record(meta: ET.Element) -> PaperIn | None:
    if meta.tag == f"{ARXIV_RAW}arXivRaw":
        ns = ARXIV_RAW
    elif meta.tag == f"{ARXIV_OAI}arXiv":
        ns = ARXIV_OAI
    else:
        skip(SOURCE, f"unknown OAI metadata format <{meta.tag}>")
        return None
    ident = arxiv_id(meta.findtext(f"{ns}id"))
    title = _text(meta.find(f"{ns}title"))
    if ident is None or not title:
        skip(SOURCE, "OAI record without id or title", meta.findtext(f"{ns}id"))
        return None
    version = ident.version
    published = None
    if ns == ARXIV_RAW:
        versions = meta.findall(f"{ns}version")
        if versions:
            published = parse_rfc822(versions[0].findtext(f"{ns}date"))
            last = versions[-1].get("version", "")
            version = int(last[1:]) if last[1:].isdigit() else version
        authors = split_authors(meta.findtext(f"{ns}authors") or "")
    else:
        created = meta.findtext(f"{ns}created")
        published = parse_iso(created + "T00:00:00Z") if created else None
        authors = []
        for author in meta.iter(f"{ns}author"):
            name = collapse(
                f"{author.findtext(f'{ns}forenames') or ''} {author.findtext(f'{ns}keyname') or ''}"
                f" {author.findtext(f'{ns}suffix') or ''}"
            )
            if name:
                authors.append(name)
    return PaperIn(
        id=ident.key,
        version=version,
        title=title,
        source=SOURCE,
        abstract=_text(meta.find(f"{ns}abstract")),
        authors=authors,
        categories=(meta.findtext(f"{ns}categories") or "").split(),
        published_at=published,
        arxiv_comment=_text(meta.find(f"{ns}comments")) or None,
        journal_ref=_text(meta.find(f"{ns}journal-ref")) or None,
    )


# ------------------------------------------------------------------ fetching


def category_query(categories: Sequence[str]) -> str:
    return " OR ".join(f"cat:{c}" for c in categories)


def date_range_query(categories: Sequence[str], first: date, last: date) -> str:
    """Papers of these categories submitted from `first` to `last` (inclusive, GMT)."""
    span = f"submittedDate:[{first:%Y%m%d}0000 TO {last:%Y%m%d}2359]"
    cats = category_query(categories)
    return f"({cats}) AND {span}" if cats else span


class Arxiv:
    """Fetches the listing feeds and the export API through `http` (give it a Throttle)."""

    def __init__(
        self,
        http: Http,
        api_url: str = "https://export.arxiv.org/api/query",
        feed_url: str = "https://rss.arxiv.org/atom",
    ) -> None:
        self.http = http
        self.api_url = api_url
        self.feed_url = feed_url.rstrip("/")

    async def feed(self, categories: Sequence[str]) -> list[FeedItem]:
        """Today's announcements in `categories`, all in one request (`cs.CL+cs.LG`)."""
        if not categories:
            return []
        response = await self.http.get(f"{self.feed_url}/{'+'.join(categories)}")
        expect_ok(response, SOURCE)
        return parse_arxiv_feed_items(response.content)

    async def query(
        self,
        search_query: str = "",
        id_list: Sequence[str] = (),
        *,
        max_results: int = 1_000,
        page_size: int = API_PAGE_SIZE,
        sort_by: str = "submittedDate",
    ) -> list[PaperIn]:
        """Up to `max_results` papers for a query or id list, page by page (throttled)."""
        papers: list[PaperIn] = []
        seen: set[str] = set()
        start = 0
        limit = min(max_results, API_MAX_RESULTS)
        while start < limit:
            size = min(page_size, limit - start)
            params = {
                "search_query": search_query,
                "id_list": ",".join(id_list),
                "start": start,
                "max_results": size,
                "sortBy": sort_by,
                "sortOrder": "descending",
            }
            response = await self.http.get(self.api_url, params=params)
            if response.status_code == 400:
                parse_arxiv_atom(response.content)  # raises with arXiv's own message
            expect_ok(response, SOURCE)
            page = parse_arxiv_atom(response.content)
            fresh = [p for p in page.papers if p.id not in seen]
            seen.update(p.id for p in page.papers)
            papers += fresh
            start += page.entries
            total = page.total if page.total is not None else 0
            # An empty page (arXiv sends those now and then) or one that only repeats what
            # we have (a server ignoring `start`) ends the paging instead of looping.
            if page.entries == 0 or not fresh or start >= total:
                break
        return papers

    async def lookup(self, keys: Sequence[str]) -> list[PaperIn]:
        """Papers by id (unknown ids are silently absent, as the API does)."""
        return await self.query(id_list=keys, max_results=max(1, len(keys)), sort_by="relevance")

    async def between(self, categories: Sequence[str], first: date, last: date) -> list[PaperIn]:
        """Backfill: papers of `categories` submitted between two dates."""
        return await self.query(date_range_query(categories, first, last), max_results=10_000)
