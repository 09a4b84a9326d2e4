"""Forms of what a user typed that the index compiler (`bot.index_compile`) looks up: a
word's alias forms ("kv cache" -> "key value cache", "llms" -> "large language model"), the
other number of an acronym-like token ("llms" / "llm"), and phrases with their function
words as gaps ("learning from human feedback" never reads the postings of "from").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.aliases import AliasTable, Tokens

FUNCTION_WORDS = frozenset(
    "a an and are as at be by for from in into is of on or the to via with".split()
)
MAX_EXPANSIONS = 4  # alias forms tried per word


def phrase_words(tokens: Sequence[str]) -> list[str | tuple[int, str]]:
    # Function words in a longer phrase are left out, keeping their positions: "learning
    # from human feedback" still needs the gap, but never intersects the postings of
    # "from", which nearly every paper has.
    kept = [(i, t) for i, t in enumerate(tokens) if t not in FUNCTION_WORDS]
    if len(kept) < 2 or len(tokens) < 3:
        kept = list(enumerate(tokens))
    return list(kept)


def variants(tokens: Sequence[str], aliases: AliasTable) -> list[Tokens]:
    """`tokens` with one alias form replaced by another: kv -> key value, kv cache ->
    key value cache (a hyphenated word), llms -> large language model."""
    out: list[Tokens] = []
    n = len(tokens)
    for start in range(n):
        for end in range(min(n, start + aliases.longest), start, -1):
            part = tuple(tokens[start:end])
            others = aliases.others(part) or aliases.others(_singular(part))
            if others:
                out += [(*tokens[:start], *o, *tokens[end:]) for o in others]
                break
    return distinct(out)[:MAX_EXPANSIONS]


_VOWELS = frozenset("aeiouy")


def distinct(forms: Sequence[Tokens]) -> list[Tokens]:
    """Forms that compile to different queries: "reinforcement learning from / with human
    feedback" are one phrase once function words are gaps, and cost as much twice."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for form in forms:
        key = tuple(phrase_words(form)) if len(form) > 1 else tuple(form)
        if key not in seen:
            seen.add(key)
            out.append(form)
    return out


def own_forms(token: str, aliases: AliasTable) -> set[str]:
    """Every token a search for the one word `token` matches as itself: its other number
    ("llm"/"llms") and the tokens of its alias forms ("dpo": "direct", "prefer", "optim"),
    each with its other number."""
    words = {token}
    other = plural_variant(token)
    if other is not None:
        words.add(other)
    for form in variants((token,), aliases):
        words.update(form)
    for word in list(words):
        other = plural_variant(word)
        if other is not None:
            words.add(other)
    return words


def plural_variant(token: str) -> str | None:
    """The stemmer leaves "llms" and "vlms" alone (no vowel); the other number of such an
    acronym-like token is matched too."""
    if len(token) < 2 or any(c in _VOWELS for c in token[:-1]) or not token.isalnum():
        return None
    if token.endswith("s") and len(token) >= 3:
        return token[:-1]
    return token + "s"


def _singular(tokens: Tokens) -> Tokens:
    if len(tokens) == 1:
        other = plural_variant(tokens[0])
        if other is not None and tokens[0].endswith("s"):
            return (other,)
    return tokens


def is_function(tokens: Sequence[str]) -> bool:
    return all(t in FUNCTION_WORDS for t in tokens)
