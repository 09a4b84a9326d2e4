"""Filters of the query language on what a paper carries besides its text.

`has:code` (a GitHub repository), `has:project` (a project page), `stars:>=N` (the
repository's stars; `>`, `<=`, `<`, `=`, or a bare number meaning `>=`; papers without a
repository count 0), `org:NAME` (the Hugging Face organisation, any case, spaces and
punctuation ignored: `org:"google deepmind"`), `kw:TERM` (a Hugging Face AI keyword, a word or
a quoted phrase) and `venue:NAME` / `venue:NAME2025` / `venue:"NAME 2025"` (where the paper was
accepted, `bot.venues`; any case; without a year, any year). Each is a clause of the query, so
it combines with words, `OR`, `-` and `( groups )` like `author:`.

A value that cannot be read raises `QueryError` with an example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import QueryError
from bot.query_values import MAX_YEAR, MIN_YEAR, Upvotes, parse_count
from bot.venues import canonical_venue

MAX_FILTER_CHARS = 100


@dataclass(frozen=True, slots=True)
class Has:
    what: str  # code | project


@dataclass(frozen=True, slots=True)
class Stars:
    count: Upvotes


@dataclass(frozen=True, slots=True)
class Org:
    name: str  # lower case, single spaces


@dataclass(frozen=True, slots=True)
class Keyword:
    term: str  # lower case, single spaces


@dataclass(frozen=True, slots=True)
class AtVenue:
    name: str  # the venue's canonical name, lower case: `neurips`
    year: int | None = None


Filter = Has | Stars | Org | Keyword | AtVenue
FILTER_TYPES = (Has, Stars, Org, Keyword, AtVenue)

# What a user may type -> the filter's name.
FILTER_OPS = {
    "has": "has",
    "stars": "stars",
    "org": "org",
    "organization": "org",
    "organisation": "org",
    "kw": "kw",
    "keyword": "kw",
    "venue": "venue",
}
_HAS = {
    "code": "code",
    "github": "code",
    "repo": "code",
    "project": "project",
    "page": "project",
    "website": "project",
}
_VENUE = re.compile(r"(.*?)[\s_-]*(\d{4})?")
_WORD_CHAR = re.compile(r"\w")


def parse_filter(op: str, value: str) -> Filter:
    """The filter `op:value` (`op` a value of `FILTER_OPS`)."""
    value = " ".join(value.split())[:MAX_FILTER_CHARS]  # as shown in an error: one line
    text = value.lower()
    if op == "has":
        what = _HAS.get(text)
        if what is None:
            raise QueryError(
                f"`has:{value}` is not something a paper can have; use `has:code` or `has:project`."
            )
        return Has(what)
    if op == "stars":
        return Stars(parse_count(value, "stars"))
    if not _WORD_CHAR.search(text):
        example = {
            "org": '`org:google` or `org:"google deepmind"`',
            "kw": '`kw:rlhf` or `kw:"reinforcement learning"`',
            "venue": '`venue:neurips`, `venue:neurips2025` or `venue:"ICLR 2025"`',
        }[op]
        raise QueryError(f"`{op}:` needs a name, for example {example}.")
    if op == "org":
        return Org(text)
    if op == "kw":
        return Keyword(text)
    return _venue(value, text)


def _venue(value: str, text: str) -> AtVenue:
    match = _VENUE.fullmatch(text)
    name = canonical_venue(match.group(1)) if match else None
    if match is None or name is None:
        raise QueryError(
            f"`venue:{value}` is not a venue I know; try `venue:neurips`, `venue:neurips2025` "
            'or `venue:"ICLR 2025"` (ACL, CVPR, EMNLP, ICML, TMLR, ...).'
        )
    year = int(match.group(2)) if match.group(2) else None
    if year is not None and not MIN_YEAR <= year <= MAX_YEAR:
        raise QueryError(f"`venue:{value}`: the year is out of range; try `venue:neurips2025`.")
    return AtVenue(name.lower(), year)


def show_filter(node: Filter) -> str:
    """The filter as a user would type it (parsing it gives `node` back)."""
    if isinstance(node, Has):
        return f"has:{node.what}"
    if isinstance(node, Stars):
        return f"stars:{node.count.op}{node.count.value}"
    if isinstance(node, Org):
        return f"org:{_quoted(node.name)}"
    if isinstance(node, Keyword):
        return f"kw:{_quoted(node.term)}"
    return f"venue:{node.name}{node.year or ''}"


def _quoted(text: str) -> str:
    return text if re.fullmatch(r"[^\s()\"]+", text) else f'"{text}"'


def compact(text: str) -> str:
    """An organisation's name as the index holds it: lower case, letters and digits only."""
    return "".join(ch for ch in text.lower() if ch.isalnum())
