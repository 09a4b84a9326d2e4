"""Acronyms and their expansions, both ways: "Direct Preference Optimization (DPO)" <-> dpo.

Two sources, merged into one `AliasTable` that the index compiler uses: a curated list of the
common acronyms of machine learning and NLP shipped in bot/data/acronyms.txt (so `dpo` works
on a store that never spelled it out), and pairs mined at ingest into the `Alias` table
(`mine_aliases`), which add the acronyms of a store's own fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

# "Words Words Words (ACR)" or "(ACRs)"; the acronym has 2-10 letters/digits, mostly capitals.
_PAREN_RE = re.compile(r"\(([A-Z][A-Za-z0-9-]{1,9}?)s?\)")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'-]*")
_SMALL = {"of", "for", "and", "the", "in", "on", "with", "to", "a", "an", "via", "from", "by"}


def mine_aliases(text: str) -> list[tuple[str, str]]:
    """Return (acronym, expansion) pairs found in `text`, both lower case."""
    found: list[tuple[str, str]] = []
    for match in _PAREN_RE.finditer(text):
        acronym = match.group(1)
        letters = [c for c in acronym if c.isalpha()]
        if len(letters) < 2 or sum(c.isupper() for c in letters) < max(2, len(letters) - 1):
            continue
        words = _WORD_RE.findall(text[max(0, match.start() - 160) : match.start()])
        expansion = _expansion(acronym, words)
        if expansion:
            found.append((acronym.lower(), expansion.lower()))
    return found


def _expansion(acronym: str, words: list[str]) -> str | None:
    """Walk back from the parenthesis, matching acronym letters to word initials.

    Hyphenated words may supply several letters ("Chain-of-Thought (CoT)"); small words may be
    skipped ("Reinforcement Learning from Human Feedback (RLHF)").
    """
    target = [c.lower() for c in acronym if c.isalpha()]
    chosen: list[str] = []
    i = len(target) - 1
    j = len(words) - 1
    while i >= 0 and j >= 0 and len(chosen) < len(target) + 4:
        word = words[j]
        parts = [p for p in word.split("-") if p]
        every = [p[0].lower() for p in parts]
        big = [p[0].lower() for p in parts if p.lower() not in _SMALL] or every[:1]
        # Match this word's initials against the end of the remaining acronym letters.
        n = next(
            (len(ini) for ini in (every, big) if target[max(i - len(ini) + 1, 0) : i + 1] == ini),
            0,
        )
        if n and n <= i + 1:
            i -= n
            chosen.append(word)
        elif word.lower() in _SMALL and chosen:
            chosen.append(word)
        elif len(parts) == 1 and target[i] == word[0].lower():
            i -= 1
            chosen.append(word)
        else:
            return None
        j -= 1
    if i >= 0 or not chosen:
        return None
    expansion = " ".join(reversed(chosen))
    return expansion if len(expansion.split()) >= 2 or "-" in expansion else None


def normalize_topic(text: str) -> str:
    """Case and spacing folded, for comparing subscriptions."""
    return " ".join(text.lower().split())


# ------------------------------------------------------------------ the alias table

Tokens = tuple[str, ...]
MAX_FORMS = 4  # other forms tried per form: the curated ones first, then the most mined


@dataclass(frozen=True, slots=True)
class AliasTable:
    """Every known form of an acronym, as analysed token sequences, mapped to its other forms.

    `("dpo",)` -> `(("direct", "prefer", "optim"),)` and back; keys are what the index's own
    analyser makes of the text, so plurals ("LLMs") and hyphens ("KV-cache") need no entry.
    """

    forms: Mapping[Tokens, tuple[Tokens, ...]]
    longest: int  # tokens in the longest form (how far a query is scanned for one)

    def others(self, tokens: Sequence[str]) -> tuple[Tokens, ...]:
        return self.forms.get(tuple(tokens), ())


@cache
def curated_aliases() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(acronym, expansions) from bot/data/acronyms.txt, in file order."""
    text = resources.files("bot").joinpath("data/acronyms.txt").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        acronym, eq, rest = line.partition("=")
        expansions = tuple(e.strip().lower() for e in rest.split("|") if e.strip())
        if eq and acronym.strip() and expansions:
            out.append((acronym.strip().lower(), expansions))
    return tuple(out)


def build_alias_table(
    mined: Mapping[str, Sequence[str]], analyze: Callable[[str], list[str]]
) -> AliasTable:
    """The curated list merged with the aliases mined from the store (`PaperStore.aliases`:
    acronym -> expansions and expansion -> acronyms). Forms of one acronym form a group; each
    form maps to the group's other forms, curated first."""
    groups: dict[Tokens, list[Tokens]] = {}  # acronym tokens -> its forms, acronym first

    def add(acronym: str, expansion: str) -> None:
        short, long = tuple(analyze(acronym)), tuple(analyze(expansion))
        if not short or not long or short == long:
            return
        group = groups.setdefault(short, [short])
        if long not in group:
            group.append(long)

    for acronym, expansions in curated_aliases():
        for expansion in expansions:
            add(acronym, expansion)
    for key, values in mined.items():
        for value in values:
            # The store lists each pair both ways; the acronym is the one-word side.
            short, long = (key, value) if len(key.split()) <= len(value.split()) else (value, key)
            if len(short.split()) == 1 and len(long.split()) > 1:
                add(short, long)
    table = _others_of(groups.values())
    return AliasTable(table, max((len(f) for f in table), default=1))


def _others_of(groups: Iterable[list[Tokens]]) -> dict[Tokens, tuple[Tokens, ...]]:
    """Each form of a group -> the group's other forms (at most `MAX_FORMS`), in order."""
    forms: dict[Tokens, list[Tokens]] = {}
    for group in groups:
        for form in group:
            slot = forms.setdefault(form, [])
            slot.extend(o for o in group if o != form and o not in slot)
    return {form: tuple(others[:MAX_FORMS]) for form, others in forms.items()}
