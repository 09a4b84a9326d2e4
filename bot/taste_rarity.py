"""How rare a word is in the store, to weigh the words papers share (`bot.taste`): the search
index's own English analyser (so "models" counts as "model") and the word's document frequency
in the indexed abstracts. A store without an index weighs every word alike."""

from __future__ import annotations

import math

from bot.index_schema import en_analyze
from bot.store import PaperStore
from bot.taste import Rarity

FIELD = "abstract"


def rarity(store: PaperStore) -> Rarity:
    """word -> log((N + 1) / (df + 1)): 0 for a word in every paper, highest for unseen ones."""
    index = store.index
    if index is None:
        return lambda _word: 1.0
    doc_freq, total = index.term_stats()

    def idf(word: str) -> float:
        tokens = en_analyze(word)
        if not tokens:
            return 0.0
        weights = [math.log((total + 1) / (doc_freq(FIELD, t) + 1)) for t in tokens]
        return sum(weights) / len(weights)

    return idf
