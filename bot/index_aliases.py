"""Acronyms written into the index: a paper that spells out "direct preference optimization"
also gets the token `dpo` in that field (title, keywords or abstract).

At query time the expansion of a curated acronym (bot/data/acronyms.txt) is then one term
lookup instead of a phrase over common words, which reads the positions of every paper that
has all the words (several ms each at 1M papers). Only the curated list is indexed: it
ships with the code, so every document of an index knows the same forms, and the index
records the list's digest (`digest`) and is rebuilt from the store when the list changes.
Aliases mined from the store later are looked up as phrases, as before (`index_compile`).

A form matches where its analysed tokens stand in a row, as listed (the list spells out the
usual wordings: "reinforcement learning from / with human feedback"). The scan runs for every
paper written to the index, so it does not call the analyser: each form is spelled out ahead
of time in every surface form whose words the analyser reads as the form's tokens (plurals,
"-ing" and "-ed" forms: "large language models"), and one Aho-Corasick automaton finds them
all, as whole words, in the text lowercased with punctuation as spaces ("retrieval-augmented
generation"; a run of separators, as in "large, language model", does not count).
`tokens_found` is the definition it is checked against (tests/test_index.py).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache

import ahocorasick_rs

from bot.aliases import Tokens, curated_aliases
from bot.index_forms import FUNCTION_WORDS

# Spellings tried for each word of an expansion: its plurals, and for the last word its
# "-ing" and "-ed" forms too ("question answering" / "question answer"); a spelling is kept
# only when the analyser reads it as the same token.
_PLURALS = ("", "s", "es", "ies")
_ENDINGS = ("", "s", "es", "ies", "ing", "ed", "d")
_STRIP = ("", "s", "es", "e", "y", "ing", "ed", "d")
# Characters the analyser splits words on, as spaces (ASCII, and the usual dashes and quotes).
_PUNCT = "".join(chr(c) for c in range(128) if not chr(c).isalnum())
_PUNCT += "\u00a0\u2009\u202f\u2010\u2011\u2012\u2013\u2014\u2015\u2018\u2019\u201c\u201d\u2026"
_PUNCT = _PUNCT.replace("\0", "")  # NUL separates the fields of a paper (`found_each`)
_SPACES = str.maketrans(_PUNCT, " " * len(_PUNCT))
_FIELDS = " \0 "
_WORD = re.compile(r"[^\W_]+")
MAX_SPELLINGS = 4096  # per form: a bound on the automaton (the longest form has 360)


class IndexedForms:
    """The curated expansions, as analysed tokens, and the acronym token each one adds."""

    def __init__(self, analyze: Callable[[str], list[str]]) -> None:
        forms: dict[Tokens, str] = {}
        words: dict[Tokens, list[list[str]]] = {}
        for acronym, expansions in curated_aliases():
            short = analyze(acronym)
            if len(short) != 1 or analyze(short[0]) != short:
                continue  # the token must read back as itself once written
            for expansion in expansions:
                long = tuple(analyze(expansion))
                content = [t for t in long if t not in FUNCTION_WORDS]
                if len(long) > 1 and content and forms.setdefault(long, short[0]) == short[0]:
                    words.setdefault(long, []).append(_WORD.findall(expansion.lower()))
        self.forms: Mapping[Tokens, str] = forms
        patterns: list[str] = []
        self._acronyms: list[str] = []
        for form, spelled in words.items():
            for text in _spellings(form, spelled, analyze):
                patterns.append(f"{text} ")
                self._acronyms.append(forms[form])
        # No space in front: a pattern that starts with a letter scans faster; the match is
        # kept when a space stands before it (a whole word).
        self._automaton = ahocorasick_rs.AhoCorasick(
            patterns, implementation=ahocorasick_rs.Implementation.DFA
        )

    def acronym(self, tokens: Tokens) -> str | None:
        """The acronym token the index adds for this form, None for any other tokens."""
        return self.forms.get(tokens)

    def found(self, text: str) -> list[str]:
        """The acronym tokens of the forms that `text` (a field) spells out, once per
        occurrence."""
        return self.found_each([text])[0]

    def found_each(self, texts: Sequence[str]) -> list[list[str]]:
        """`found` for each of `texts` (the fields of one paper), in one pass."""
        plain = f" {_FIELDS.join(texts).lower().translate(_SPACES)} "
        if plain.count("\0") != len(texts) - 1:  # a text with a NUL of its own
            return self.found_each([t.replace("\0", " ") for t in texts])
        out: list[list[str]] = [[] for _ in texts]
        for i, start, _end in self._automaton.find_matches_as_indexes(plain, overlapping=True):
            if plain[start - 1] == " ":
                out[plain.count("\0", 0, start)].append(self._acronyms[i])
        return out


def _spellings(
    form: Tokens, spelled: Sequence[list[str]], analyze: Callable[[str], list[str]]
) -> list[str]:
    """The texts (words joined by spaces) that the analyser reads as `form`."""
    choices: list[set[str]] = [{t} if t in FUNCTION_WORDS else set() for t in form]
    for words in spelled:
        if len(words) != len(form):
            continue  # a word the analyser drops or splits: no spelling of its own
        for k, (word, token) in enumerate(zip(words, form, strict=True)):
            if token not in FUNCTION_WORDS:
                last = k == len(form) - 1
                choices[k] |= _same_token(word, token, analyze, last)
    if not all(choices):
        return []
    product = itertools.product(*(sorted(c) for c in choices))
    return [" ".join(p) for p in itertools.islice(product, MAX_SPELLINGS)]


def _same_token(word: str, token: str, analyze: Callable[[str], list[str]], last: bool) -> set[str]:
    strip, endings = (_STRIP, _ENDINGS) if last else (("", "y"), _PLURALS)
    bases = {word[: len(word) - len(e)] for e in strip if word.endswith(e)}
    found = {b + e for b in bases if b for e in endings}
    return {w for w in found if analyze(w) == [token]}


def tokens_found(forms: IndexedForms, tokens: list[str]) -> list[str]:
    """The acronym tokens of the forms standing in a row in `tokens` (an analysed field),
    once per occurrence: what `IndexedForms.found` finds without the analyser."""
    out: list[str] = []
    for form, acronym in forms.forms.items():
        n = len(form)
        out += [acronym for i in range(len(tokens) - n + 1) if tuple(tokens[i : i + n]) == form]
    return out


@cache
def digest() -> str:
    """A digest of the curated list: an index built with another list is rebuilt."""
    text = "\n".join(f"{a}={'|'.join(e)}" for a, e in curated_aliases())
    return hashlib.sha1(text.encode()).hexdigest()[:16]
