"""What a topic would have brought: its volume over the last four weeks, read from the index.

`/papers subscribe` answers with it and `/papers list` shows each topic's weekly volume. Every
count is a range on the index's `announced` field (one search for the window and its best
examples, one histogram per UTC day): no paper is loaded but the few examples shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import Paper
from bot.query import parse_query
from bot.search import announced_matches, busiest_day
from bot.store import PaperStore

WEEKS = 4
EXAMPLES = 3
NARROW_ABOVE = 15  # papers a day (busiest day) above which the preview suggests a filter
NARROW_HINT = (
    "That is a lot for one digest: narrow it with a filter, for example `has:code`, "
    "`stars:>=10`, `org:`, `kw:` or `venue:` (see `/papers help search`)."
)


@dataclass(frozen=True, slots=True)
class Preview:
    """A topic's last four weeks: how many papers, the busiest day, the best few."""

    total: int
    busiest: int
    examples: list[Paper]

    @property
    def per_week(self) -> str:
        weekly = self.total / WEEKS
        return str(round(weekly)) if weekly >= 10 else f"{weekly:.1f}".removesuffix(".0")

    def volume(self) -> str:
        if not self.total:
            return "no papers in the last four weeks"
        papers = "paper" if self.per_week == "1" else "papers"
        return f"about {self.per_week} {papers} a week (busiest day: {self.busiest})"

    def lines(self) -> list[str]:
        if not self.total:
            return ["Nothing matched this topic in the last four weeks."]
        out = [f"Over the last four weeks: {self.volume()}. For example:"]
        out += [f"• {p.title}" for p in self.examples]
        if self.busiest > NARROW_ABOVE:
            out.append(NARROW_HINT)
        return out


def preview(store: PaperStore, topic: str, now: datetime, examples: int = EXAMPLES) -> Preview:
    """The preview of `topic` (a search) over the four weeks before `now`."""
    query = parse_query(topic, now)
    start = now - timedelta(weeks=WEEKS)
    window = announced_matches(store, query, start, now, max(examples, 1))
    if not window.total:
        return Preview(0, 0, [])
    busiest = busiest_day(store, query, start, now)
    ids = [r.id for r in window.hits[:examples]]
    papers = {p.id: p for p in store.get_many(ids)}
    return Preview(window.total, busiest, [papers[i] for i in ids if i in papers])
