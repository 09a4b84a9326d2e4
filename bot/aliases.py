"""Acronym aliases mined from text: "Direct Preference Optimization (DPO)" -> dpo.

Mined at ingest into the `Alias` table, so a search for `dpo` also finds papers that only
spell the phrase out (and the other way round).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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


def unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)
