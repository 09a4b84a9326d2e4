"""How rare a term is in the store, to weigh the terms papers share (`bot.taste`): the
index's document frequencies, weighed by `bot.paper_terms.idf` as "more like this" weighs
them. A store without an index weighs every term alike."""

from __future__ import annotations

from bot.paper_terms import idf
from bot.store import PaperStore
from bot.taste import Rarity


def rarity(store: PaperStore) -> Rarity:
    """term -> log(N / df) (`bot.paper_terms.idf`): 0 for a term in one paper or fewer, or in
    too many to tell anything."""
    index = store.index
    if index is None:
        return lambda _term: 1.0
    doc_freq, total = index.term_stats()
    return lambda term: idf(term, doc_freq, total)
