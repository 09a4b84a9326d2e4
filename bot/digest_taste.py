"""The taste a channel's 👍/👎 reactions taught (`bot.taste`), as digest selection uses it:
how far each candidate moves, and why. Loaded once per selection for the channels being
selected; each paper's weighed words computed once whatever the channels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from bot.db import chunks
from bot.models import Paper
from bot.store import PaperStore
from bot.taste import Scorer, Taste, Vectors, terms_of
from bot.taste_rarity import rarity
from bot.taste_store import tastes


@dataclass(slots=True)
class Taught:
    tastes: dict[str, Taste]
    vectors: Vectors
    store: PaperStore
    scorers: dict[str, Scorer] = field(default_factory=dict)  # per channel

    @classmethod
    def load(cls, store: PaperStore, channels: Sequence[str]) -> Taught:
        found = tastes(store.engine, list(channels))
        taught = cls(found, Vectors(rarity(store) if found else _flat), store)
        taught._bags(sorted({pid for taste in found.values() for pid in taste.paper_ids}))
        return taught

    def scorer(self, channel: str) -> Scorer:
        """The channel's scorer (`move(id)`, `reason(id, delta)`); papers it has not seen
        are read first by `prefetch` (or one by one, the rare ones it missed)."""
        return self.scorers.get(channel) or self.scorers.setdefault(
            channel, Scorer(self.tastes[channel], self.vectors)
        )

    def prefetch(self, ids: Iterable[str]) -> None:
        """Read the weighed words of these candidates in bulk (one query per 5,000)."""
        self._bags(sorted({pid for pid in ids if pid not in self.vectors.bags}))

    def _bags(self, ids: Sequence[str]) -> None:
        """The weighed words of these papers (title, abstract, HF keywords), read in bulk."""
        table = Paper.__table__  # type: ignore[attr-defined]
        columns = (table.c.id, table.c.title, table.c.abstract, table.c.ai_keywords)
        with Session(self.store.engine) as session:
            for chunk in chunks(list(ids), 5_000):
                rows = session.execute(select(*columns).where(table.c.id.in_(chunk)))
                self.vectors.bags.update((pid, terms_of(*parts)) for pid, *parts in rows)


def _flat(_word: str) -> float:
    return 1.0
