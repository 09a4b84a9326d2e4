"""The query language: text -> `Query` (a frozen AST); the search path; showing a query.

Grammar (DESIGN.md): words (all must match), `"exact phrase"`, `OR` between words, phrases or
`( groups )`, `-exclude` (word, phrase, group or operator), `author:name` / `author:"jane doe"`,
`cat:cs.CL`, `since:` / `until:` (`2024-06-01`, `2024-06`, `7d`, `4w`, `3m`, `1y`),
`upvotes:>=10` (`>`, `<=`, `<`, `=`, or a bare number meaning `>=`),
`sort:relevance|new|top`.

Anything a user types is data. A bad *operator value* (`since:yesterdayish`) raises
`QueryError` with an example; everything else odd (unbalanced quotes, `*`, `NEAR(`, SQL, emoji,
a lone `OR` or `-`) becomes plain words or is dropped, so the worst case is an empty query that
the caller reports. The AST is compiled into tantivy query objects by `bot.index`; user text is
never spliced into a query string.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.errors import QueryError
from bot.models import Paper

if TYPE_CHECKING:
    from bot.index import PaperIndex
    from bot.store import PaperStore

MAX_QUERY_CHARS = 500  # longer input is cut (at a space) and the query says so
MAX_TERMS = 32  # words, phrases, authors and categories together
MAX_WORD_CHARS = 64
MAX_DEPTH = 4  # nested ( groups )
MAX_UPVOTES = 10**9
# Calendar dates in since:/until: (arXiv starts in 1991; far-future years overflow datetime).
MIN_YEAR = 1900
MAX_YEAR = 2999
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


Node = Word | Phrase | Author | Category | AnyOf | AllOf | Not


@dataclass(frozen=True, slots=True)
class Upvotes:
    op: str  # >= > <= < =
    value: int

    def bounds(self) -> tuple[int | None, int | None]:
        """Inclusive (low, high)."""
        v = self.value
        return {
            ">=": (v, None),
            ">": (v + 1, None),
            "<=": (None, v),
            "<": (None, v - 1),
            "=": (v, v),
        }[self.op]

    def matches(self, upvotes: int) -> bool:
        low, high = self.bounds()
        return (low is None or upvotes >= low) and (high is None or upvotes <= high)


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

    def has_filters(self) -> bool:
        return self.since is not None or self.until is not None or self.upvotes is not None

    def has_text(self) -> bool:
        """Does any positive clause score by text (so relevance ranking means something)?"""
        return any(not isinstance(c, Not) for c in self.clauses)

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


@dataclass(frozen=True, slots=True)
class Hit:
    paper: Paper
    score: float
    partial: bool = False  # matches most of the words, not all (ranked below every full match)


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
            j = i
            while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            word = text[i:j]
            i = j
            name, colon, value = word.partition(":")
            op = _OPS.get(name.lower()) if colon else None
            if op is not None:
                if not value and i < n and text[i] == '"':  # author:"jane doe"
                    end = text.find('"', i + 1)
                    value = text[i + 1 : end]
                    i = end + 1
                toks.append(_Tok("op", value.strip(), op=op, neg=neg))
            elif word == "OR" and not neg:
                toks.append(_Tok("or"))
            elif word == "-":
                continue
            else:
                toks.append(_Tok("word", word, neg=neg))
    return toks


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


def _clean(text: str) -> str:
    """Words with at least one letter or digit, lower case, single spaces."""
    words = (_EDGE_PUNCT.sub("", w) for w in text.lower().split())
    return " ".join(w for w in words if _WORD_CHAR.search(w))


def _any_of(left: Node, right: Node) -> AnyOf:
    options = left.options if isinstance(left, AnyOf) else (left,)
    more = right.options if isinstance(right, AnyOf) else (right,)
    return AnyOf(options + more)


_RELATIVE = re.compile(r"(\d{1,5})\s*([dwmy])")
_ISO = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def parse_when(value: str, now: datetime, *, end: bool = False, name: str = "since") -> datetime:
    """`2024-06-01`, `2024-06`, `2024`, `7d`, `4w`, `3m`, `1y` -> a UTC datetime.

    A calendar date means its start for `since:` and its end (exclusive) for `until:`, so
    `until:2024-06-30` includes the 30th. Relative ages count back from `now`.
    """
    text = value.strip().lower()
    example = f"for example `{name}:2024-06-01` or `{name}:7d` (also 4w, 3m, 1y)"
    rel = _RELATIVE.fullmatch(text)
    if rel:
        n, unit = int(rel.group(1)), rel.group(2)
        try:
            if unit == "d":
                return now - timedelta(days=n)
            if unit == "w":
                return now - timedelta(weeks=n)
            return _months_back(now, n * (12 if unit == "y" else 1))
        except (OverflowError, ValueError):
            raise QueryError(f"`{name}:{value}` is too far back; {example}.") from None
    iso = _ISO.fullmatch(text)
    if iso:
        year, month, day = int(iso.group(1)), iso.group(2), iso.group(3)
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise QueryError(
                f"`{name}:{value}` is out of range: dates go from {MIN_YEAR} to {MAX_YEAR}; "
                f"{example}."
            )
        try:
            start = date(year, int(month or 1), int(day or 1))
        except ValueError:
            raise QueryError(f"`{name}:{value}` is not a real date; {example}.") from None
        if end:
            if day:
                stop = start + timedelta(days=1)
            elif month:
                stop = _add_months(start, 1)
            else:
                stop = date(year + 1, 1, 1)
            return datetime.combine(stop, time(), UTC)
        return datetime.combine(start, time(), UTC)
    if not text:
        raise QueryError(f"`{name}:` needs a date; {example}.")
    raise QueryError(f"`{name}:{value}` is not a date I understand; {example}.")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _months_back(now: datetime, months: int) -> datetime:
    day = _add_months(now.date(), -months)
    return datetime.combine(day, now.timetz())


_UPVOTES = re.compile(r"(>=|<=|=>|=<|>|<|==|=)?\s*(\d{1,10})")


def parse_upvotes(value: str) -> Upvotes:
    match = _UPVOTES.fullmatch(value.strip())
    if not match:
        raise QueryError(
            f"`upvotes:{value}` is not a count; use a number with an optional comparison, "
            "for example `upvotes:>=10` or `upvotes:<5`."
        )
    op = {"=>": ">=", "=<": "<=", "==": "=", None: ">="}.get(match.group(1), match.group(1))
    return Upvotes(op, min(int(match.group(2)), MAX_UPVOTES))


# ----------------------------------------------------------------------- the search path


RELAX_BELOW = 10  # fewer full matches than this: fill up with papers matching most words


def search_papers(store: PaperStore, query: Query, limit: int, now: datetime) -> list[Hit]:
    """The whole search: index -> ids and scores -> rows from the store, in ranked order.

    When fewer than `RELAX_BELOW` papers match every word, papers matching most of the words
    fill the rest (`Hit.partial`), ranked below every full match. An empty query finds
    nothing. A store without an index gets an in-memory one, built from the store (fine for
    the small stores of tests and scripts; `runtime` opens a real one).
    """
    if query.is_empty() or limit <= 0:
        return []
    # tantivy allocates for `limit` hits up front: 10**9 would abort the process.
    limit = min(limit, MAX_RESULTS)
    index = _index_of(store)
    aliases = store.aliases()
    ranked = index.search(query, aliases, limit, now)
    partial: list[tuple[str, float]] = []
    if len(ranked) < min(limit, RELAX_BELOW):
        strict = {pid for pid, _ in ranked}
        partial = index.search_relaxed(query, aliases, limit - len(ranked), now, strict)
    papers = {p.id: p for p in store.get_many([pid for pid, _ in ranked + partial])}
    hits = [Hit(papers[pid], score) for pid, score in ranked if pid in papers]
    hits += [Hit(papers[pid], score, partial=True) for pid, score in partial if pid in papers]
    return hits


def _index_of(store: PaperStore) -> PaperIndex:
    if store.index is None:
        from bot.index import PaperIndex

        store.index = PaperIndex(None)
        store.sync_index()
    return store.index


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


def _show(node: Node) -> str:
    if isinstance(node, Word):
        return node.text
    if isinstance(node, Phrase):
        return f'"{node.text}"'
    if isinstance(node, Author):
        return f'author:"{node.name}"' if " " in node.name else f"author:{node.name}"
    if isinstance(node, Category):
        return f"cat:{node.code}"
    if isinstance(node, AnyOf):
        return " OR ".join(_show(o) for o in node.options)
    if isinstance(node, AllOf):
        return "(" + " ".join(_show(p) for p in node.parts) + ")"
    return "-" + _show(node.node)


def with_sort(query: Query, sort: Sort) -> Query:
    return replace(query, sort=sort)


def flatten_words(nodes: Sequence[Node]) -> list[str]:
    """Every positive word and phrase (for highlighting or logging)."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Word | Phrase):
            out.append(node.text)
        elif isinstance(node, AnyOf):
            out += flatten_words(node.options)
        elif isinstance(node, AllOf):
            out += flatten_words(node.parts)
    return out
