"""Reactions teach the ranking: what a 👍 or 👎 means, and how a channel's taste moves a paper.

Pure functions: `bot.taste_store` records reactions and reads a channel's `Taste`;
`bot.digest_select` asks a `Scorer` how much a candidate moves and why.

The rule, in a user's words: a digest ranks a paper higher when it is like the papers 👍'd in
this channel, lower when it is like the papers 👎'd here. "Like" is shared terms, the ones
"more like this" compares (`bot.paper_terms`): a paper's title, Hugging Face keywords and
abstract as the search index analyses them, weighted by field as search weighs them, each
weighed by how rare it is in the store (`bot.taste_rarity`: the index's document
frequencies), so "model" or "language" count little and "overoptimization" much. A paper's
weighed terms are computed once per digest tick, whatever the channels.
The channel's 👍 papers make one profile (their words, weighed by each paper's reactions); a
candidate's similarity to it (cosine, 0..1) times `ALPHA` is added to its topic relevance
(0..1); the same for 👎 with `BETA`, subtracted. A reaction is one unit of evidence: on a post
that shows one paper it is all that paper's; on a digest post of N papers each gets 1/N (a 👍 on
a whole digest says "good digest", not "each of these is great"). With less than one unit in
all, the effect shrinks in proportion, so one 👍 on one paper of a ten-paper digest barely
moves anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.models import Paper
from bot.paper_terms import terms_of

__all__ = [
    "ALPHA",
    "BETA",
    "DOWN",
    "UP",
    "Rarity",
    "Scorer",
    "Taste",
    "Vectors",
    "reaction_sign",
    "terms",
    "terms_of",
]

UP, DOWN = 1, -1
ALPHA = 0.5  # how far a paper just like the 👍 profile moves up (relevance is 0..1)
BETA = 0.5  # how far a paper just like the 👎 profile moves down
REASON_FROM = 0.05  # a move smaller than this gets no reason line
SIMILAR = 0.15  # a reacted paper at least this similar counts in the reason ("like 2 papers")
MAX_EMOJI = 100  # longer names are not ours: never parsed further

# Slack names (SR-6: `+1`/`-1` in real payloads, `thumbsup`/`thumbsdown` in the docs, skin
# tones as a `::skin-tone-N` suffix) and Discord's unicode (DR-3: U+1F44D / U+1F44E, skin
# tone modifiers U+1F3FB..U+1F3FF stripped; a variation selector too).
_NAMES = {
    "+1": UP,
    "thumbsup": UP,
    "thumbs_up": UP,
    "\N{THUMBS UP SIGN}": UP,
    "-1": DOWN,
    "thumbsdown": DOWN,
    "thumbs_down": DOWN,
    "\N{THUMBS DOWN SIGN}": DOWN,
}
_MODIFIERS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f]")


def reaction_sign(emoji: object) -> int | None:
    """+1 for a thumbs up, -1 for a thumbs down (any skin tone), None for anything else."""
    if not isinstance(emoji, str) or not emoji or len(emoji) > MAX_EMOJI:
        return None
    name = _MODIFIERS.sub("", emoji.split("::", 1)[0].strip().strip(":")).lower()
    return _NAMES.get(name)


# ------------------------------------------------------------------------------ words

MAX_WORDS = 40  # a paper is compared on its 40 heaviest terms (rare ones, title and keywords)


def terms(paper: Paper) -> dict[str, float]:
    """A paper's terms with their weights before rarity (`bot.paper_terms`, as "more like
    this" weighs them)."""
    return terms_of(paper.title, paper.abstract, paper.ai_keywords)


# ------------------------------------------------------------------------------ taste


@dataclass(slots=True)
class Taste:
    """What a channel has taught: paper id -> weight (sum of 1/N per reaction), both signs."""

    liked: dict[str, float] = field(default_factory=dict)
    disliked: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.liked or self.disliked)

    def trimmed(self, most: int) -> Taste:
        """The `most` heaviest papers of each side (a long history costs no more)."""

        def top(side: dict[str, float]) -> dict[str, float]:
            if len(side) <= most:
                return side
            return dict(sorted(side.items(), key=lambda kv: (-kv[1], kv[0]))[:most])

        return Taste(top(self.liked), top(self.disliked))

    def add(self, sign: int, paper_ids: Sequence[str]) -> None:
        if not paper_ids:
            return
        side = self.liked if sign > 0 else self.disliked
        share = 1.0 / len(paper_ids)
        for pid in paper_ids:
            side[pid] = side.get(pid, 0.0) + share

    @property
    def paper_ids(self) -> set[str]:
        return set(self.liked) | set(self.disliked)


Bag = Mapping[str, float]
Rarity = Callable[[str], float]  # a term -> its weight (inverse document frequency)


class Vectors:
    """Papers' words weighed by how rare each is (`rarity`), unit length, each paper computed
    once whatever the number of channels that compare it."""

    def __init__(self, rarity: Rarity) -> None:
        self.rarity = rarity
        self.bags: dict[str, Bag] = {}
        self._idf: dict[str, float] = {}
        self._vectors: dict[str, dict[str, float]] = {}

    def __call__(self, pid: str) -> dict[str, float]:
        found = self._vectors.get(pid)
        if found is None:
            raw = {}
            for word, count in self.bags.get(pid, {}).items():
                idf = self._idf.get(word)
                if idf is None:
                    idf = self._idf[word] = self.rarity(word)
                if idf > 0:
                    raw[word] = count * idf
            if len(raw) > MAX_WORDS:
                raw = dict(sorted(raw.items(), key=lambda wv: (-wv[1], wv[0]))[:MAX_WORDS])
            found = self._vectors[pid] = _unit(raw)
        return found


class Scorer:
    """How far a channel's taste moves each candidate, and why."""

    def __init__(self, taste: Taste, vectors: Vectors) -> None:
        self.taste = taste
        self.vector = vectors
        self.liked = self._profile(taste.liked)
        self.disliked = self._profile(taste.disliked)

    def _profile(self, weights: Mapping[str, float]) -> tuple[dict[str, float], float]:
        """The weighted sum of the reacted papers' vectors (unit length), and its strength
        (total weight, at most 1)."""
        total: dict[str, float] = {}
        get = total.get
        for pid, weight in weights.items():
            for word, value in self.vector(pid).items():
                total[word] = get(word, 0.0) + weight * value
        return _unit(total), min(1.0, sum(weights.values()))

    def move(self, pid: str) -> float:
        """How much the taste adds to (or takes from) a candidate's relevance."""
        vec = self.vector(pid)
        up = ALPHA * self.liked[1] * _dot(vec, self.liked[0]) if self.liked[0] else 0.0
        down = BETA * self.disliked[1] * _dot(vec, self.disliked[0]) if self.disliked[0] else 0.0
        return up - down

    def reason(self, pid: str, delta: float) -> str:
        """A one-line reason for a move worth saying ("" otherwise): how many of the papers
        reacted to here it is like."""
        if abs(delta) < REASON_FROM:
            return ""
        vec = self.vector(pid)
        if delta > 0:
            return f"like {_count(self._near(vec, self.taste.liked))} 👍'd here"
        return f"like {_count(self._near(vec, self.taste.disliked))} 👎'd here"

    def _near(self, vec: Mapping[str, float], weights: Mapping[str, float]) -> int:
        near = sum(1 for pid in weights if _dot(vec, self.vector(pid)) >= SIMILAR)
        return max(near, 1)


def _count(n: int) -> str:
    return f"{n} paper{'s' if n != 1 else ''}"


def _unit(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {w: v / norm for w, v in vec.items()} if norm else {}


def _dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(w, 0.0) for w, v in a.items())
