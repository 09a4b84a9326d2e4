"""Which paper events become a follow-up, and what the reply says (bot/followup_news.py);
and the console's way of showing a reply in a thread."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.console import ConsoleAdapter
from bot.followup_news import followup_reply, news
from bot.messages import ChannelRef
from bot.models import Paper
from bot.paper_events import PaperEventOut

NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)  # a Wednesday


def event(
    kind: str,
    old: str | None,
    new: str | None,
    *,
    pid: str = "2606.00001",
    n: int = 1,
    age: timedelta = timedelta(hours=1),
) -> PaperEventOut:
    return PaperEventOut(n, pid, kind, old, new, NOW - age, 1)


def stored(**values: Any) -> Paper:
    base: dict[str, Any] = {
        "id": "2606.00001",
        "title": "Direct preference optimization at scale",
        "first_seen_at": NOW,
        "updated_at": NOW,
        "sources": ["hf"],
    }
    return Paper(**(base | values))


def told(events: list[PaperEventOut]) -> list[tuple[str, int]]:
    return sorted((i.kind, i.level) for i in news(events, NOW))


def test_thresholds_are_crossed_once_at_the_highest() -> None:
    assert told([event("upvotes", "40", "230")]) == [("upvotes", 200)]
    assert told([event("upvotes", "120", "180")]) == []  # no threshold between
    assert told([event("upvotes", "45", "55"), event("upvotes", "55", "120", n=2)]) == [
        ("upvotes", 100)
    ]
    assert told([event("stars", None, "1500")]) == [("stars", 1000)]
    assert told([event("upvotes", "abc", "60")]) == []  # a value we cannot read: nothing


def test_code_appearing_is_news_a_repo_moving_is_not_and_stars_ride_along() -> None:
    assert told([event("code", None, "https://github.com/a/b")]) == [("code", 0)]
    assert told([event("code", "https://github.com/a/b", "https://github.com/a/c")]) == []
    both = [event("code", None, "https://github.com/a/b"), event("stars", None, "150", n=2)]
    assert told(both) == [("code", 0)]


def test_old_news_is_not_told() -> None:
    assert told([event("version", "1", "2", age=timedelta(days=3))]) == []
    assert told([event("version", "1", "2"), event("venue", None, "ICLR 2026")]) == [
        ("venue", 0),
        ("version", 0),
    ]


def test_the_reply_names_the_paper_what_happened_and_a_link() -> None:
    paper = stored(github_repo="https://github.com/acme/dpo", github_stars=1234, upvotes=180)
    code = followup_reply("code", 0, "https://github.com/acme/dpo", paper, "C1:1.2")
    assert code.title == "Code released (1,234 ★): Direct preference optimization at scale"
    assert code.text == "https://github.com/acme/dpo" and code.thread_of == "C1:1.2"
    version = followup_reply("version", 0, "3", paper, "C1:1.2")
    assert version.title.startswith("New arXiv version: v3")
    assert version.text == "https://arxiv.org/abs/2606.00001v3"
    ranked = followup_reply("upvotes", 100, "180", paper, "C1:1.2", rank=2)
    assert ranked.title.startswith("Now #2 on Hugging Face this week, 180 upvotes")
    unranked = followup_reply("upvotes", 100, "180", paper, "C1:1.2")
    assert unranked.title.startswith("Passed 100 upvotes on Hugging Face (now 180)")
    venue = followup_reply("venue", 0, "NeurIPS 2026", paper, "C1:1.2")
    assert venue.title.startswith("Accepted at NeurIPS 2026")


async def test_console_shows_a_reply_indented_in_its_thread() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(None, stdout=out, interactive=False)  # type: ignore[arg-type]
    reply = followup_reply("venue", 0, "NeurIPS 2026", stored(), "console-digest-1")
    await console.send(ChannelRef.parse("console:local:term"), reply, idempotency_key="k")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[console:local:term] in thread of console-digest-1:"
    assert lines[1].startswith("  │ Accepted at NeurIPS 2026")
