"""The query language: text -> `Query` (a frozen AST), and a query shown in words.

Grammar (DESIGN.md): words (all must match), `"exact phrase"`, `OR` between words, phrases or
`( groups )`, `-exclude` (word, phrase, group or operator), `author:name` / `author:"jane doe"`,
`cat:cs.CL`, `since:` / `until:` (`2024-06-01`, `2024-06`, `7d`, `4w`, `3m`, `1y`),
`upvotes:>=10` (`>`, `<=`, `<`, `=`, or a bare number meaning `>=`),
`sort:relevance|new|top`, and the filters of `bot.query_filters` (`has:code`, `has:project`,
`stars:>=100`, `org:NAME`, `kw:TERM`, `venue:neurips2025`).

Anything a user types is data. A bad *operator value* (`since:yesterdayish`) raises
`QueryError` with an example; everything else odd (unbalanced quotes, `*`, `NEAR(`, SQL, emoji,
a lone `OR` or `-`) becomes plain words or is dropped, so the worst case is an empty query that
the caller reports. The AST is compiled into tantivy query objects by `bot.index`; user text is
never spliced into a query string. This module depends on nothing else of the bot but its
errors and operator values (`bot.query_values`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.errors import QueryError
from bot.query_filters import FILTER_OPS, FILTER_TYPES, Filter, parse_filter, show_filter
from bot.query_values import Upvotes, parse_upvotes, parse_when

MAX_QUERY_CHARS = 500  # longer input is cut (at a space) and the query says so
MAX_TERMS = 32  # words, phrases, authors and categories together
MAX_WORD_CHARS = 64
MAX_DEPTH = 4  # nested ( groups )
MAX_RESULTS = 100  # results one search returns (`paperboy search --limit`, the bot's pages)


class Sort(StrEnum):
    RELEVANCE = "relevance"
    NEW = "new"
    TOP = "top"


_SORT_NAMES = {
    "relevance": Sort.RELEVANCE,
    "rel": Sort.RELEVANCE,
    "best": Sort.RELEVANCE,
    "new": Sort.NEW,
    "newest": Sort.NEW,
    "recent": Sort.NEW,
    "date": Sort.NEW,
    "top": Sort.TOP,
    "upvotes": Sort.TOP,
    "popular": Sort.TOP,
}


# --------------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Word:
    """One typed word; the index analyses it (stemming; `gpt-4` becomes a phrase)."""

    text: str


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str


@dataclass(frozen=True, slots=True)
class Author:
    name: str


@dataclass(frozen=True, slots=True)
class Category:
    code: str  # lower case: `cs.cl`, or an archive: `cs`


@dataclass(frozen=True, slots=True)
class AnyOf:
    """`a OR b OR (c d)`: at least one must match."""

    options: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """A `( group )`: every part must match (negated parts must not)."""

    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


Node = Word | Phrase | Author | Category | AnyOf | AllOf | Not | Filter


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search. `clauses` must all match (a `Not` clause must not)."""

    clauses: tuple[Node, ...] = ()
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC
    upvotes: Upvotes | None = None
    sort: Sort = Sort.RELEVANCE
    truncated: bool = False  # the input was longer than MAX_QUERY_CHARS / MAX_TERMS
    text: str = field(default="", compare=False)  # as typed (after the length cut)

    def is_empty(self) -> bool:
        """Nothing to look for: no clause and no filter (the caller says so)."""
        return not self.clauses and not self.has_filters()

    def is_dates_only(self) -> bool:
        """Only since:/until: (`since:7d`): as a standing topic or watch it follows every
        paper, or none, so subscribe and watch refuse it."""
        return not self.clauses and self.upvotes is None and not self.is_empty()

    def has_filters(self) -> bool:
        return self.since is not None or self.until is not None or self.upvotes is not None

    def has_text(self) -> bool:
        """Does any positive clause score by text (so relevance ranking means something)?"""
        return any(_scores(c) for c in self.clauses)

    def lone_word(self) -> str | None:
        """The word typed, when the query's text is that one word (exclusions, categories,
        `author:` and filters aside): the most ambiguous kind of search
        (`bot.index_feedback`)."""
        scoring = [c for c in self.clauses if _scores(c) and not isinstance(c, Author)]
        if len(scoring) == 1 and isinstance(scoring[0], Word):
            return scoring[0].text
        return None

    def plain_text(self) -> str:
        """The positive words and phrases, for a remote search engine that knows no operators."""
        out: list[str] = []

        def walk(node: Node) -> None:
            if isinstance(node, Word | Phrase):
                out.append(node.text)
            elif isinstance(node, AnyOf):
                walk(node.options[0])
            elif isinstance(node, AllOf):
                for part in node.parts:
                    walk(part)

        for clause in self.clauses:
            walk(clause)
        return " ".join(out)


# ------------------------------------------------------------------------------- lexer

_OPS = {
    "author": "author",
    "authors": "author",
    "by": "author",
    "cat": "cat",
    "category": "cat",
    "since": "since",
    "after": "since",
    "from": "since",
    "until": "until",
    "before": "until",
    "upvotes": "upvotes",
    "votes": "upvotes",
    "likes": "upvotes",
    "sort": "sort",
    **FILTER_OPS,
}
_WORD_CHAR = re.compile(r"\w")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")  # `dpo,` is `dpo`; `gpt-4` stays
_SPECIAL = '()"'


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # word | phrase | op | lparen | rparen | or
    value: str = ""
    op: str = ""
    neg: bool = False


def _lex(text: str) -> list[_Tok]:
    if text.count('"') % 2:  # an unclosed quote: the quote is dropped, the words stay
        cut = text.rfind('"')
        text = text[:cut] + " " + text[cut + 1 :]
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        neg = False
        while c == "-" and i + 1 < n and not text[i + 1].isspace():
            neg = True
            i += 1
            c = text[i]
        if c == "(":
            toks.append(_Tok("lparen", neg=neg))
            i += 1
        elif c == ")":
            toks.append(_Tok("rparen"))
            i += 1
        elif c == '"':
            end = text.find('"', i + 1)
            toks.append(_Tok("phrase", text[i + 1 : end], neg=neg))
            i = end + 1
        else:
            tok, i = _lex_word(text, i, neg)
            if tok is not None:
                toks.append(tok)
    return toks


def _lex_word(text: str, i: int, neg: bool) -> tuple[_Tok | None, int]:
    """The word (or `op:value`) starting at `i`, and where the next token starts."""
    n = len(text)
    j = i
    while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
        j += 1
    word = text[i:j]
    name, colon, value = word.partition(":")
    op = _OPS.get(name.lower()) if colon else None
    if op is not None:
        if not value and j < n and text[j] == '"':  # author:"jane doe"
            end = text.find('"', j + 1)
            value = text[j + 1 : end]
            j = end + 1
        return _Tok("op", value.strip(), op=op, neg=neg), j
    if word == "OR" and not neg:
        return _Tok("or"), j
    if word == "-":
        return None, j
    return _Tok("word", word, neg=neg), j


# ------------------------------------------------------------------------------ parser


def parse_query(text: str, now: datetime) -> Query:
    """Parse what a user typed. Raises `QueryError` only for a bad operator value."""
    text = text or ""
    truncated = False
    if len(text) > MAX_QUERY_CHARS:
        cut = text.rfind(" ", 0, MAX_QUERY_CHARS)
        text = text[: cut if cut > MAX_QUERY_CHARS // 2 else MAX_QUERY_CHARS]
        truncated = True
    parser = _Parser(_lex(text), now)
    clauses = parser.sequence(0)
    return Query(
        clauses=tuple(clauses),
        since=parser.since,
        until=parser.until,
        upvotes=parser.upvotes,
        sort=parser.sort,
        truncated=truncated or parser.truncated,
        text=" ".join(text.split()),
    )


class _Parser:
    def __init__(self, toks: list[_Tok], now: datetime) -> None:
        self.toks = toks
        self.pos = 0
        self.now = now
        self.terms = 0
        self.truncated = False
        self.since: datetime | None = None
        self.until: datetime | None = None
        self.upvotes: Upvotes | None = None
        self.sort = Sort.RELEVANCE

    def sequence(self, depth: int) -> list[Node]:
        """Clauses up to the matching `)` (or the end); `OR` binds tighter than AND."""
        items: list[Node] = []
        pending_or = False
        while self.pos < len(self.toks):
            tok = self.toks[self.pos]
            self.pos += 1
            if tok.kind == "rparen":
                if depth > 0:
                    break
                continue  # a stray ")" is punctuation
            if tok.kind == "or":
                pending_or = bool(items) and not isinstance(items[-1], Not)
                continue
            node = self.atom(tok, depth)
            if node is None:
                continue
            if tok.neg:
                node = Not(node)
            if pending_or and not isinstance(node, Not):
                items[-1] = _any_of(items[-1], node)
            else:
                items.append(node)
            pending_or = False
        return items

    def atom(self, tok: _Tok, depth: int) -> Node | None:
        if tok.kind == "lparen":
            if depth + 1 > MAX_DEPTH:  # checked before recursing: 500 `(` cannot overflow
                raise QueryError(
                    f"Groups nest at most {MAX_DEPTH} deep; write fewer `(`, for example "
                    "`(dpo OR rlhf) alignment`."
                )
            parts = self.sequence(depth + 1)
            if not parts:
                return None
            return parts[0] if len(parts) == 1 else AllOf(tuple(parts))
        if tok.kind == "op":
            return self.operator(tok)
        if tok.kind == "phrase":
            words = _clean(tok.value)
            if not words:
                return None
            return self.counted(Phrase(words) if " " in words else Word(words))
        if tok.kind == "word":
            word = _clean(tok.value)[:MAX_WORD_CHARS]
            return self.counted(Word(word)) if word else None
        return None

    def counted(self, node: Node) -> Node | None:
        if self.terms >= MAX_TERMS:
            self.truncated = True
            return None
        self.terms += 1
        return node

    def operator(self, tok: _Tok) -> Node | None:
        op, value = tok.op, tok.value
        if op in FILTER_OPS.values():
            return self.counted(parse_filter(op, value))
        if op == "author":
            name = _clean(value)
            if not name:
                raise QueryError(
                    'author: needs a name, for example `author:hinton` or `author:"jane doe"`.'
                )
            return self.counted(Author(name))
        if op == "cat":
            code = value.strip().lower()
            if not re.fullmatch(r"[a-z][a-z-]*(\.[a-z][a-z-]*)?", code):
                raise QueryError(
                    f"`cat:{value}` is not an arXiv category; try `cat:cs.CL` or `cat:cs`."
                )
            return self.counted(Category(code))
        if op in ("since", "until"):
            when = parse_when(value, self.now, end=(op == "until"), name=op)
            if op == "since":
                self.since = when
            else:
                self.until = when
            return None
        if op == "upvotes":
            self.upvotes = parse_upvotes(value)
            return None
        sort = _SORT_NAMES.get(value.strip().lower())
        if sort is None:
            raise QueryError(
                f"`sort:{value}` is not a sort order; use `sort:relevance`, `sort:new` or "
                "`sort:top`."
            )
        self.sort = sort
        return None


def _scores(node: Node) -> bool:
    """Does this clause match by text (not only by a filter)?"""
    if isinstance(node, AnyOf):
        return any(_scores(o) for o in node.options)
    if isinstance(node, AllOf):
        return any(_scores(p) for p in node.parts)
    return not isinstance(node, Not | Filter | Category)


def _clean(text: str) -> str:
    """Words with at least one letter or digit, lower case, single spaces."""
    words = (_EDGE_PUNCT.sub("", w) for w in text.lower().split())
    return " ".join(w for w in words if _WORD_CHAR.search(w))


def _any_of(left: Node, right: Node) -> AnyOf:
    options = left.options if isinstance(left, AnyOf) else (left,)
    more = right.options if isinstance(right, AnyOf) else (right,)
    return AnyOf(options + more)


def describe(query: Query) -> str:
    """What was searched, in words: `"reward model" OR rlhf · by hinton · since 2024-06-01`."""
    parts = [_show(c) for c in query.clauses if not isinstance(c, Author | Category)]
    bits = [" ".join(p for p in parts if p)] if parts else []
    bits += [f"by {c.name}" for c in query.clauses if isinstance(c, Author)]
    bits += [f"in {c.code}" for c in query.clauses if isinstance(c, Category)]
    if query.since:
        bits.append(f"since {query.since:%Y-%m-%d}")
    if query.until:
        bits.append(f"until {query.until - timedelta(microseconds=1):%Y-%m-%d}")
    if query.upvotes:
        op = {">=": "≥", "<=": "≤"}.get(query.upvotes.op, query.upvotes.op)
        bits.append(f"upvotes {op} {query.upvotes.value}")
    if query.sort is not Sort.RELEVANCE:
        bits.append("newest first" if query.sort is Sort.NEW else "most upvoted first")
    if query.truncated:
        bits.append(f"(cut to {MAX_TERMS} terms / {MAX_QUERY_CHARS} characters)")
    return " · ".join(b for b in bits if b) or "everything"


# A word typed in quotes can look like syntax once the quotes are gone (`"venue:0"`, `"-x"`,
# `"OR"`): shown again, it keeps them, so reading it back gives the same word.
_PLAIN_WORD = re.compile(r"[^\s()\":-][^\s()\":]*")


def _show_word(text: str) -> str:
    plain = _PLAIN_WORD.fullmatch(text) and text.upper() not in {"OR", "AND", "NOT"}
    return text if plain else f'"{text}"'


def clauses_text(query: Query) -> str:
    """The query's clauses as a user would type them (`dpo has:code stars:>=10`)."""
    return " ".join(_show(c) for c in query.clauses)


def _show(node: Node) -> str:
    if isinstance(node, Word):
        return _show_word(node.text)
    if isinstance(node, Phrase):
        return f'"{node.text}"'
    if isinstance(node, Author):
        return f'author:"{node.name}"' if " " in node.name else f"author:{node.name}"
    if isinstance(node, Category):
        return f"cat:{node.code}"
    if isinstance(node, FILTER_TYPES):
        return show_filter(node)
    if isinstance(node, AnyOf):
        return " OR ".join(_show(o) for o in node.options)
    if isinstance(node, AllOf):
        return "(" + " ".join(_show(p) for p in node.parts) + ")"
    return "-" + _show(node.node)
