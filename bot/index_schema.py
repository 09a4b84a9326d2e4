"""The index's schema: analysers, fields, and the document of one paper.

Bump `SCHEMA_VERSION` when the schema or the analysers change: an index of another version is
rebuilt from the store (`bot.index.open_index`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from tantivy import Document, Filter, SchemaBuilder, TextAnalyzerBuilder, Tokenizer

from bot.index_aliases import IndexedForms
from bot.links import github_url, safe_url
from bot.models import Paper
from bot.query_filters import compact
from bot.times import aware
from bot.venues import venue_of

SCHEMA_VERSION = 7
STATE_FILE = "paperboy-index.json"

# Field boosts: a word in the title counts most, then keywords and abstract, then authors.
# Keywords (Hugging Face's, extracted from the abstract) restate the abstract: they weigh what
# the abstract weighs, or a paper that has them would count the same evidence twice over one
# that has none (arXiv-only papers).
BOOSTS = {"title": 3.0, "keywords": 1.0, "abstract": 1.0, "authors": 0.6}
TEXT_FIELDS = ("title", "keywords", "abstract")

EN = "pb_en"
NAME = "pb_name"
CODE = "pb_code"


class Ranked(NamedTuple):
    """One search answer: a paper id and its score (or sort key), best first in a list."""

    id: str
    score: float


def analyzers() -> dict[str, Any]:
    """The analysers the schema names, to register on every opened index."""
    return {
        # Titles, keywords, abstracts: English stemming so `models` finds `model`.
        EN: TextAnalyzerBuilder(Tokenizer.simple())
        .filter(Filter.remove_long(40))
        .filter(Filter.lowercase())
        .filter(Filter.ascii_fold())
        .filter(Filter.stemmer("english"))
        .build(),
        # Author names: no stemming (`Evans` is not `Evan`), accents folded.
        NAME: TextAnalyzerBuilder(Tokenizer.simple())
        .filter(Filter.remove_long(40))
        .filter(Filter.lowercase())
        .filter(Filter.ascii_fold())
        .build(),
        # Ids and categories: one token, lower case.
        CODE: TextAnalyzerBuilder(Tokenizer.raw()).filter(Filter.lowercase()).build(),
    }


@cache
def indexed_forms() -> IndexedForms:
    """The curated acronym forms that documents carry as tokens (`bot.index_aliases`)."""
    return IndexedForms(_en_analyze)


def en_tokens(text: str) -> list[str]:
    """`text` as the title, keywords and abstract fields index it (stemmed, folded)."""
    return _en_analyze(text)


def _en_analyze(text: str) -> list[str]:
    tokens: list[str] = _en().analyze(text)
    return tokens


def en_analyze(text: str) -> list[str]:
    """Text as the title, keyword and abstract fields index it (lower case, stemmed)."""
    return _en_analyze(text)


@cache
def _en() -> Any:
    return analyzers()[EN]


def schema() -> Any:
    sb = SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name=CODE, index_option="basic")
    for name in TEXT_FIELDS:
        sb.add_text_field(name, tokenizer_name=EN, index_option="position")
    sb.add_text_field("authors", tokenizer_name=NAME, index_option="position")
    sb.add_text_field("categories", tokenizer_name=CODE, index_option="basic")
    # `has:code`, `org:...`, `venue:...` as whole tokens (`bot.query_filters`).
    sb.add_text_field("facets", tokenizer_name=CODE, index_option="basic")
    sb.add_integer_field("stars", indexed=True, fast=True)
    # Seconds since the epoch: when the paper appeared (published, else Daily Papers date,
    # else first seen). Indexed for since:/until:, fast for sort:new and recency.
    sb.add_integer_field("published", indexed=True, fast=True)
    sb.add_integer_field("upvotes", indexed=True, fast=True)
    # Seconds since the epoch: when the paper was announced (bot.announce); digests select
    # their window's papers with a range on it.
    sb.add_integer_field("announced", indexed=True, fast=True)
    return sb.build()


def document(row: Mapping[str, Any]) -> Any:
    """The tantivy document of one paper (a store row or its fields)."""
    doc = Document()
    doc.add_text("id", row["id"])
    texts = [("title", row["title"])]
    texts += [("keywords", keyword) for keyword in row.get("ai_keywords") or ()]
    if row.get("abstract"):
        texts.append(("abstract", row["abstract"]))
    _add_texts(doc, texts, indexed_forms())
    for author in row.get("authors") or ():
        doc.add_text("authors", author)
    for code in row.get("categories") or ():
        code = code.lower()
        doc.add_text("categories", code)
        archive = code.split(".", 1)[0]
        if archive != code:
            doc.add_text("categories", archive)
    doc.add_integer("published", seconds(appeared(row)))
    doc.add_integer("upvotes", int(row.get("upvotes") or 0))
    for facet in facets(row):
        doc.add_text("facets", facet)
    doc.add_integer("stars", int(row.get("github_stars") or 0))
    when = row.get("announced_at")
    doc.add_integer("announced", seconds(when) if when is not None else 0)
    return doc


def facets(row: Mapping[str, Any]) -> list[str]:
    """The paper's filter tokens: `has:code`, `has:project`, `org:googledeepmind`,
    `venue:neurips`, `venue:neurips 2025`."""
    out = []
    # The same checks as the card's links: `has:code` finds exactly the papers whose card
    # shows a code link.
    if github_url(row.get("github_repo")):
        out.append("has:code")
    if safe_url(row.get("project_page")):
        out.append("has:project")
    org = compact(row.get("organization") or "")
    if org:
        out.append(f"org:{org}")
    venue = venue_of(row.get("arxiv_comment"), row.get("journal_ref"))
    if venue is not None:
        out.append(f"venue:{venue.name.lower()}")
        if venue.year is not None:
            out.append(f"venue:{venue.name.lower()} {venue.year}")
    return out


def _add_texts(doc: Any, texts: list[tuple[str, str]], forms: IndexedForms) -> None:
    """Each (field, text), and (as another value of the field, so no phrase spans both) the
    acronym of every curated expansion the text spells out."""
    found = forms.found_each([text for _field, text in texts])
    for (field, text), acronyms in zip(texts, found, strict=True):
        doc.add_text(field, text)
        if acronyms:
            doc.add_text(field, " ".join(acronyms))


ROW_FIELDS = (
    "id",
    "title",
    "abstract",
    "authors",
    "categories",
    "ai_keywords",
    "published_at",
    "hf_daily_date",
    "first_seen_at",
    "updated_at",
    "announced_at",
    "upvotes",
    "github_repo",
    "github_stars",
    "project_page",
    "organization",
    "arxiv_comment",
    "journal_ref",
)


def row_of(paper: Paper | Mapping[str, Any]) -> Mapping[str, Any]:
    """A paper's indexed fields as a mapping (store rows already are one)."""
    if isinstance(paper, Mapping):
        return paper
    return {name: getattr(paper, name) for name in ROW_FIELDS}


def appeared(row: Mapping[str, Any]) -> datetime:
    """When a paper appeared: published, else its Daily Papers date, else first seen."""
    published: datetime | None = row.get("published_at")
    if published is not None:
        return published
    day = row.get("hf_daily_date")
    if day is not None:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    first: datetime = row["first_seen_at"]
    return first


def paper_time(paper: Paper) -> datetime:
    """When a paper appeared, as the index orders and filters it (`since:`, `sort:new`)."""
    return aware(appeared(row_of(paper)))


def seconds(when: datetime) -> int:
    return int(aware(when).timestamp())
