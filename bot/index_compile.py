"""Query AST -> tantivy query objects, with the index's own analysers and the alias table.

User text is never turned into a query string: every word becomes term, phrase, boolean,
DisMax, range or boost query objects.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from tantivy import FieldType, Occur, Query as TQuery

from bot.aliases import AliasTable, Tokens
from bot.index_filters import filter_query
from bot.index_forms import (
    FUNCTION_WORDS as _FUNCTION_WORDS,
    distinct,
    is_function,
    phrase_words,
    plural_variant,
    variants,
)
from bot.index_schema import BOOSTS, EN, NAME, TEXT_FIELDS, indexed_forms, seconds
from bot.query import AllOf, AnyOf, Author, Category, Node, Not, Phrase, Query, Word
from bot.query_filters import FILTER_TYPES

FULL = tuple((name, BOOSTS[name]) for name in TEXT_FIELDS)
ALIAS_SLOP = 1  # an expansion matches as a phrase, with this many words in between at most
ALIAS_TIE = 0.2  # DisMax: the best form of a word counts, the others a little
# Phrase evidence for a run of words (field, slop, boost): together in the title counts most.
PROXIMITY = (("title", 1, 3.0), ("keywords", 1, 2.0), ("abstract", 0, 1.0))
PROXIMITY_MAX_DF = 100_000  # abstract proximity skipped when every word is this common
# Head-first: a keyword or abstract proximity phrase whose rarest word is in more than this
# share of the dense lookups' papers (1% of all) is scored for the head's best papers only.
LATER_SHARE = 0.2
MAX_RELAX_WORDS = 4  # more words: no "most of the words" tail (its combinations cost)


class Compiler:
    """AST -> tantivy query objects. Words are analysed with the index's own analysers.

    Consecutive words form a *run* ("vision language models"). Each word must match, in any
    text field, either as typed or in one of its alias forms: an acronym finds its expansion
    as a phrase (a small slop, never loose words), an expansion typed as words finds its
    acronym (`DisMax`, so a paper with both forms is not counted twice). A run of several
    words also adds optional phrase clauses (title, keywords, abstract): papers where the
    words stand together, in the title first, score above papers where they are scattered.
    """

    def __init__(
        self,
        schema: Any,
        analyzers: dict[str, Any],
        aliases: AliasTable,
        fields: tuple[tuple[str, float], ...] = FULL,
        doc_freq: Callable[[str, str], int] | None = None,
    ) -> None:
        self.schema = schema
        self.text_fields = fields
        self.en = analyzers[EN]
        self.name = analyzers[NAME]
        self.aliases = aliases
        # Curated expansions the documents carry as their acronym token (`index_aliases`):
        # looked up as that one term, not as a phrase.
        self.indexed = indexed_forms()
        self.doc_freq = doc_freq
        # Head-first mode (`bot.index_rank.head_first`): abstract lookups whose rarest word
        # is in more than `dense_df` papers are left out of the query and collected here.
        self.dense_df: int | None = None
        self.dense: list[Any] = []
        self._optional: Any = None  # the dense lookup `fields` left out last
        # ... and phrases of common words (proximity, typed), scored for the head query's best
        # papers only.
        self.later: list[Any] = []
        # Does a since:/until: window lead the intersection (its posting list), or the words
        # (each match checks its date in the fast field)? See `filters`.
        self.window_leads = True

    def query(self, query: Query) -> Any | None:
        """The tantivy query for `query`, or None when it cannot match anything."""
        parts = self.parts(query.clauses)
        if parts is None:
            return None
        must = parts.must + self.filters(query)
        if len(must) == 1 and not parts.must_not and not parts.should:
            return must[0]
        return _conjunction(must, parts.must_not, parts.should)

    def relaxed(self, query: Query) -> Any | None:
        """Papers matching most of the query's typed words (and every other part: author:,
        cat:, phrases, filters), or None when there is nothing to relax."""
        parts = self.parts(query.clauses)
        if parts is None:
            return None
        words = parts.words
        n = len(words)
        if n < 2 or n > MAX_RELAX_WORDS:
            return None
        need = 1 if n == 2 else n // 2 + 1
        combos = [
            TQuery.boolean_query([(Occur.Must, q) for q in combo])
            for combo in itertools.combinations(words, need)
        ]
        relaxed = combos[0] if len(combos) == 1 else _should(combos)
        must = [relaxed, *parts.fixed, *self.filters(query)]
        return _conjunction(must, parts.must_not, parts.should)

    def filters(self, query: Query) -> list[Any]:
        """Range clauses for since:/until: and upvotes: (unscored, like every filter)."""
        out = []
        if query.since is not None or query.until is not None:
            out.append(
                TQuery.range_query(
                    self.schema,
                    "published",
                    FieldType.Integer,
                    seconds(query.since) if query.since else None,
                    seconds(query.until) if query.until else None,
                    include_lower=True,
                    include_upper=query.until is None,
                    # Dense words: a window holds a small share of the papers, and its posting
                    # list leads the intersection instead of a check of every match of the
                    # words. Otherwise (rare words, or a head-first query, which holds no dense
                    # list) the words lead and each match checks its date in the fast field:
                    # gathering the window's postings costs more (one term per second of the
                    # window: 6 ms for 30 days of 1M papers).
                    use_inverted_index=self.window_leads and self.dense_df is None,
                )
            )
        if query.upvotes is not None:
            low, high = query.upvotes.bounds()
            if high is not None and low is not None and high < low:
                out.append(TQuery.empty_query())
            elif low is not None or high is not None:
                out.append(TQuery.range_query(self.schema, "upvotes", FieldType.Integer, low, high))
        return [_unscored(clause) for clause in out]

    def node(self, node: Node) -> Any | None:
        if isinstance(node, Word):
            return self.word(node.text)
        if isinstance(node, Phrase):
            return self.word(node.text, slop=0)  # "quoted": other forms exact too
        if isinstance(node, Author):
            tokens = self.name.analyze(node.name)
            return self.field_text("authors", tokens) if tokens else None
        if isinstance(node, Category):
            return _unscored(TQuery.term_query(self.schema, "categories", node.code))
        if isinstance(node, FILTER_TYPES):
            found = filter_query(self.schema, self.en, node)
            return None if found is None else _unscored(found)
        if isinstance(node, AnyOf):
            options = [q for q in (self.node(o) for o in node.options) if q is not None]
            return _should(options)
        if isinstance(node, AllOf):
            compiled = self.parts(node.parts)
            if compiled is None:
                return None
            return _conjunction(compiled.must, compiled.must_not, compiled.should)
        return None

    def parts(self, parts: Sequence[Node]) -> _Parts | None:
        """The clauses of parts that must all match. Negated parts are looked up in every
        field. None when a part cannot match (only stop-characters, say): all parts must
        match, so the whole cannot either."""
        out = _Parts()
        run: list[str] = []

        def end_run() -> bool:
            if run:
                units = self.run(run)
                if units is None:
                    return False
                out.must.extend(units)
                out.words.extend(self.full(self.loose_words, run))
                out.should.extend(self.proximity(run))
                run.clear()
            return True

        for part in parts:
            if isinstance(part, Word):
                run.append(part.text)
                continue
            if not end_run():
                return None
            if isinstance(part, Not):
                negated = self.full_node(part.node)  # an exclusion stays exact
                if negated is not None:
                    out.must_not.append(negated)
                continue
            compiled = self.node(part)
            if compiled is None:
                return None
            out.must.append(compiled)
            out.fixed.append(compiled)
        if not end_run():
            return None
        return out

    # -------------------------------------------------------------- words and runs

    def run(self, words: Sequence[str]) -> list[Any] | None:
        """One required clause per word, or per group of words that spells an acronym out.

        Function words ("of", "for") are not required when the run has other words: nearly
        every paper has them, so they cost a dense intersection and tell nothing; they still
        count as gaps in the proximity phrases."""
        tokens = [self.en.analyze(w) for w in words]
        if not all(tokens):
            return None
        needed = [not is_function(t) for t in tokens]
        if not any(needed):
            needed = [True] * len(tokens)
        units: list[Any] = []
        i = 0
        while i < len(words):
            span = self._alias_span(tokens, i)
            if span > 1:
                typed = [
                    self.word_tokens(tokens[k], words[k]) for k in range(i, i + span) if needed[k]
                ]
                flat = tuple(t for part in tokens[i : i + span] for t in part)
                alternatives = [_all(typed)]
                alternatives += [self.form(o) for o in self.cheap(self.aliases.others(flat), flat)]
                units.append(_best(alternatives))
                i += span
            else:
                if needed[i]:
                    units.append(self.word_tokens(tokens[i], words[i]))
                i += 1
        return units

    def loose_words(self, words: Sequence[str]) -> list[Any]:
        """The run's words one by one, function words left out (what relaxation drops)."""
        kept = [w for w in words if not is_function(self.en.analyze(w))]
        return [q for q in (self.word(w) for w in kept) if q is not None]

    def _alias_span(self, tokens: Sequence[list[str]], start: int) -> int:
        """How many words from `start` spell one alias form together (0 or 1: none)."""
        longest = self.aliases.longest
        for end in range(len(tokens), start + 1, -1):
            flat = tuple(t for part in tokens[start:end] for t in part)
            if len(flat) <= longest and self.aliases.others(flat):
                return end - start
        return 0

    def word(self, text: str, slop: int = ALIAS_SLOP) -> Any | None:
        tokens = self.en.analyze(text)
        return self.word_tokens(tokens, text, slop) if tokens else None

    def word_tokens(self, tokens: list[str], text: str, slop: int = ALIAS_SLOP) -> Any:
        """A word (or a quoted phrase) as typed, in any field, or in any of its alias forms
        (those with at most `slop` words in between)."""
        acronym = self.indexed.acronym(tuple(tokens))
        own = [acronym] if acronym is not None else tokens  # the same papers, one term
        typed = self.fields(own, self.name.analyze(text), slop=0, typed=True)
        alternatives = [self.with_optional(typed)]
        others = self.cheap(variants(tokens, self.aliases), tuple(own))
        alternatives += [self.form(other, slop) for other in others]
        return _best(alternatives)

    def cheap(self, forms: Sequence[Tokens], typed: Sequence[str]) -> list[Tokens]:
        """`forms` with each indexed expansion as its acronym token, leaving out the forms
        that are what was typed, once each."""
        out = []
        for form in distinct(forms):
            acronym = self.indexed.acronym(form)
            short = (acronym,) if acronym is not None else form
            if short != tuple(typed) and short not in out:
                out.append(short)
        return out

    def form(self, tokens: Sequence[str], slop: int = ALIAS_SLOP) -> Any:
        """Another form of what was typed (an acronym, an expansion): text fields only."""
        return self.with_optional(self.fields(list(tokens), [], slop=slop))

    def with_optional(self, clauses: list[Any]) -> Any:
        """`clauses` (one form's fields) as one clause, with the dense abstract lookup that
        `fields` left out (head-first) as an optional part of the same form: looked up for
        the papers the form matches in a title, keywords or authors only (a seek each, never
        a scan of its posting list), and scored where the full query scores it, so a paper
        of the head query scores as in the full query."""
        either = _should(clauses)
        optional, self._optional = self._optional, None
        if optional is None or either is None:
            return either
        return TQuery.boolean_query([(Occur.Must, either), (Occur.Should, optional)])

    def full_node(self, node: Node) -> Any | None:
        """`node` compiled with every lookup, in head-first mode too."""
        return self.full(self.node, node)

    def full(self, compile: Callable[[Any], Any], arg: Any) -> Any:
        dense_df, self.dense_df = self.dense_df, None
        try:
            return compile(arg)
        finally:
            self.dense_df = dense_df

    def fields(
        self, tokens: list[str], name_tokens: list[str], slop: int, typed: bool = False
    ) -> list[Any]:
        """`tokens` in each text field (and `name_tokens` in authors). In head-first mode a
        dense abstract lookup is left out: a word, or another form's phrase, comes back as
        an optional part of its form (`with_optional`); a phrase as typed, of words that
        common, weighs little and is scored for the head query's best papers only."""
        clauses = []
        for field, boost in self.text_fields:
            query = self.field_text(field, tokens, slop)
            if field == "abstract" and self._is_dense(field, tokens):
                if typed and len(tokens) > 1:
                    self.later.append(query)
                else:
                    self.dense.append(query)
                    self._optional = query  # `with_optional` adds it back
                continue
            clauses.append(query if boost == 1.0 else TQuery.boost_query(query, boost))
        if name_tokens and self.text_fields == FULL:
            clauses.append(
                TQuery.boost_query(self.field_text("authors", name_tokens), BOOSTS["authors"])
            )
        return clauses

    def field_text(self, field: str, tokens: list[str], slop: int = 0) -> Any:
        if len(tokens) == 1:
            plural = plural_variant(tokens[0]) if field != "authors" else None
            term = TQuery.term_query(self.schema, field, tokens[0])
            if plural is None:
                return term
            return _should([term, TQuery.term_query(self.schema, field, plural)])
        return TQuery.phrase_query(self.schema, field, phrase_words(tokens), slop)

    def proximity(self, words: Sequence[str]) -> list[Any]:
        """Optional clauses that reward the run's words standing together (or a paper
        using an acronym the words spell out: the same evidence, in one word)."""
        tokens = [t for w in words for t in self.en.analyze(w)]
        if len([t for t in tokens if t not in _FUNCTION_WORDS]) < 2:
            return []
        content = [t for t in tokens if t not in _FUNCTION_WORDS]
        # The whole run as a phrase, and (for three words or more) each pair of neighbouring
        # words: "direct preference alignment" is closer to "direct preference
        # optimization" than a paper with the three words apart. A run that is an indexed
        # expansion is its acronym's token instead.
        runs = [tuple(tokens)]
        if len(content) > 2:
            runs += list(itertools.pairwise(content))
        out = []
        acronyms: list[Tokens] = []
        for run in runs:
            acronym = self.indexed.acronym(run)
            if acronym is not None:  # the index holds these words together as one token
                acronyms.append((acronym,))
                continue
            out += self.phrase_evidence(phrase_words(run))
        acronyms += self.acronyms_spelled(words)
        return out + [self.form(o) for o in distinct(acronyms)]

    def phrase_evidence(self, phrase: list[str | tuple[int, str]]) -> list[Any]:
        """The phrase in the title, keywords and abstract, boosted (`PROXIMITY`)."""
        out = []
        for field, slop, boost in PROXIMITY:
            if self._too_common(field, phrase) or self._absent(field, phrase):
                continue
            query = TQuery.phrase_query(self.schema, field, phrase, slop)
            query = TQuery.boost_query(query, boost)
            if field != "title" and self._is_dense(field, phrase, LATER_SHARE):
                # Head-first: scored for the head query's best papers only (reading the
                # positions of every paper with these words costs ms at 1M papers).
                self.later.append(query)
                continue
            out.append(query)
        return out

    def acronyms_spelled(self, words: Sequence[str]) -> list[Tokens]:
        """The one-word alias forms of the word groups of the run that spell one out."""
        analysed = [self.en.analyze(w) for w in words]
        out: list[Tokens] = []
        i = 0
        while i < len(words):
            span = self._alias_span(analysed, i)
            if span > 1:
                flat = tuple(t for part in analysed[i : i + span] for t in part)
                out += [o for o in self.aliases.others(flat) if len(o) == 1]
            i += max(span, 1)
        return out

    def _is_dense(
        self, field: str, tokens: Sequence[str | tuple[int, str]], share: float = 1.0
    ) -> bool:
        """In head-first mode: is the rarest word of this lookup in more than `dense_df`
        (times `share`) papers' `field`?"""
        if self.dense_df is None or self.doc_freq is None:
            return False
        words = [w if isinstance(w, str) else w[1] for w in tokens]
        return min(self.doc_freq(field, w) for w in words) > self.dense_df * share

    def _absent(self, field: str, phrase: Sequence[str | tuple[int, str]]) -> bool:
        """Is a word of this phrase in no paper's `field` (the phrase cannot match)?"""
        if self.doc_freq is None:
            return False
        return any(self.doc_freq(field, w if isinstance(w, str) else w[1]) == 0 for w in phrase)

    def _too_common(self, field: str, phrase: Sequence[str | tuple[int, str]]) -> bool:
        """Is every word of this proximity phrase in more than `PROXIMITY_MAX_DF` papers'
        `field`? Then checking positions means reading them for most of the index (tens of
        ms at 1M papers) to reorder papers that all have the words anyway: left out. Rarer
        words, and every title and keyword phrase, keep their proximity evidence."""
        if self.doc_freq is None or field in ("title", "keywords"):
            return False
        words = [w if isinstance(w, str) else w[1] for w in phrase]
        return all(self.doc_freq(field, w) > PROXIMITY_MAX_DF for w in words)


@dataclasses.dataclass
class _Parts:
    """Compiled parts of a query or ( group ) that must all match."""

    must: list[Any] = dataclasses.field(default_factory=list)  # every required clause
    words: list[Any] = dataclasses.field(default_factory=list)  # the typed words, one clause each
    # required and not a typed word (author:, cat:, "phrases", groups): never relaxed
    fixed: list[Any] = dataclasses.field(default_factory=list)
    must_not: list[Any] = dataclasses.field(default_factory=list)
    should: list[Any] = dataclasses.field(default_factory=list)  # scoring only (proximity)


def _all(clauses: list[Any]) -> Any:
    if len(clauses) == 1:
        return clauses[0]
    return TQuery.boolean_query([(Occur.Must, q) for q in clauses])


def _best(alternatives: list[Any]) -> Any:
    """The best-scoring of several forms of one thing (plus a little for the others)."""
    if len(alternatives) == 1:
        return alternatives[0]
    return TQuery.disjunction_max_query(alternatives, tie_breaker=ALIAS_TIE)


def _conjunction(must: list[Any], must_not: list[Any], should: list[Any]) -> Any:
    if not must:
        must = [TQuery.all_query()]
    if len(must) == 1 and not must_not and not should:
        return must[0]
    return TQuery.boolean_query(
        [(Occur.Must, q) for q in must]
        + [(Occur.MustNot, q) for q in must_not]
        + [(Occur.Should, q) for q in should]
    )


def _should(clauses: list[Any]) -> Any | None:
    clauses = [c for c in clauses if c is not None]
    if not clauses:
        return None
    if len(clauses) == 1:
        return clauses[0]
    return TQuery.boolean_query([(Occur.Should, c) for c in clauses])


def _unscored(clause: Any) -> Any:
    """A filter narrows and never scores: tantivy scores a range query 1.0 and a category
    term by BM25 over a paper's category list, so `dpo upvotes:>=1` or `cat:cs.CL` reordered
    the papers that match them all by something other than the words."""
    return TQuery.boost_query(clause, 0.0)
