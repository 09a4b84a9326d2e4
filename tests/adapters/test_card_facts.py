"""What helps a reader decide, on every platform: the code link with its stars, the
organization, the venue, and the Hugging Face one-line summary in place of a long abstract."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapters import console, discord_render, slack_render
from bot.cards import to_card
from bot.messages import LONG_ABSTRACT, PaperCard, Reply, ReplyKind
from bot.models import Paper
from tests.adapters.discord_limits import assert_within_limits
from tests.adapters.fake_slack import assert_valid_blocks
from tests.adapters.test_slack_render import all_text

LONG = "We study preference optimization without a reward model in many settings. " * 6
SHORT = "We study preference optimization."


def full_card(**kw: object) -> PaperCard:
    values: dict[str, object] = {
        "id": "2401.00001",
        "title": "Direct Preference Optimization",
        "url": "https://arxiv.org/abs/2401.00001",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "published": date(2024, 1, 2),
        "abstract": LONG,
        "summary": "DPO fits preferences with a classification loss.",
        "github_repo": "https://github.com/eric/dpo",
        "github_stars": 12_345,
        "organization": "Stanford University",
        "venue": "NeurIPS 2023",
    }
    values.update(kw)
    return PaperCard(**values)  # type: ignore[arg-type]


def bare_card(**kw: object) -> PaperCard:
    return PaperCard(
        id="2401.00002",
        title="A plain paper",
        url="https://arxiv.org/abs/2401.00002",
        authors=("Grace Hopper",),
        published=date(2024, 1, 3),
        abstract=LONG,
        **kw,  # type: ignore[arg-type]
    )


def results(*cards: PaperCard) -> Reply:
    return Reply(kind=ReplyKind.RESULTS, title="Papers for dpo", cards=cards, query="dpo")


def slack_shows(reply: Reply) -> str:
    messages = slack_render.render(reply, source_text="dpo")
    for message in messages:
        assert_valid_blocks(message)
    return all_text(messages)


def discord_shows(reply: Reply) -> str:
    parts = []
    for message in discord_render.render(reply):
        assert_within_limits(message)
        for embed in message["embeds"]:
            data = embed.to_dict()
            parts.append(data.get("description", ""))
            parts.extend(f"{f['name']}: {f['value']}" for f in data.get("fields", []))
    return "\n".join(parts)


@pytest.mark.parametrize("kind", [ReplyKind.RESULTS, ReplyKind.PAPER])
def test_every_platform_shows_code_stars_organization_and_venue(kind: ReplyKind) -> None:
    reply = Reply(kind=kind, title="DPO", cards=(full_card(),))
    slack, discord, text = slack_shows(reply), discord_shows(reply), console.render(reply)
    for shown in (slack, discord, text):
        assert "Stanford University" in shown
        assert "NeurIPS 2023" in shown
        assert "★ 12,345" in shown
    assert "<https://github.com/eric/dpo|code> ★ 12,345" in slack
    assert "[GitHub ★ 12,345](https://github.com/eric/dpo)" in discord
    assert "https://github.com/eric/dpo ★ 12,345" in text


def test_one_paper_in_detail_shows_the_summary_and_the_whole_abstract_everywhere() -> None:
    reply = Reply(kind=ReplyKind.PAPER, title="DPO", cards=(full_card(),))
    for shown in (slack_shows(reply), discord_shows(reply), console.render(reply, width=10_000)):
        assert "DPO fits preferences with a classification loss." in shown
        assert LONG.strip() in shown


def test_a_long_abstract_gives_way_to_the_one_line_summary_in_lists() -> None:
    assert len(LONG) > LONG_ABSTRACT
    reply = results(full_card())
    for shown in (slack_shows(reply), discord_shows(reply), console.render(reply)):
        assert "DPO fits preferences with a classification loss." in shown
        assert "without a reward model" not in shown


def test_a_short_abstract_is_shown_whole_even_with_a_summary() -> None:
    reply = results(full_card(abstract=SHORT))
    for shown in (slack_shows(reply), discord_shows(reply), console.render(reply)):
        assert SHORT in shown
        assert "classification loss" not in shown


def test_a_long_abstract_without_a_summary_is_cut_at_a_word() -> None:
    reply = results(bare_card())
    for shown in (slack_shows(reply), discord_shows(reply), console.render(reply)):
        assert "We study preference optimization without a reward model" in shown
        assert LONG.strip() not in shown


def test_a_paper_without_these_facts_shows_no_empty_labels() -> None:
    reply = results(bare_card())
    for shown in (slack_shows(reply), discord_shows(reply), console.render(reply)):
        assert "Grace Hopper" in shown and "2024-01-03" in shown
        assert "★" not in shown and "github" not in shown.lower()
        assert "· ·" not in shown and "None" not in shown
    paper = discord_shows(Reply(kind=ReplyKind.PAPER, title="P", cards=(bare_card(),)))
    assert "Organization" not in paper and "Venue" not in paper


@pytest.mark.parametrize(
    "repo",
    [
        "http://github.com/eric/dpo",
        "https://gitlab.com/eric/dpo",
        "https://github.com.evil.example/x",
        "<!channel>",
        "[x](https://evil.example)",
    ],
)
def test_a_code_url_that_is_not_https_github_never_becomes_a_link(repo: str) -> None:
    reply = results(bare_card(github_repo=repo, github_stars=7))
    slack, discord, text = slack_shows(reply), discord_shows(reply), console.render(reply)
    assert "|code>" not in slack and "★ 7" not in slack
    assert "GitHub" not in discord and "★ 7" not in discord
    assert repo not in text and "★ 7" not in text


def test_hostile_organization_and_venue_are_shown_as_text_only() -> None:
    hostile = "<!channel> @everyone [x](https://evil.example) *b*"
    reply = results(bare_card(organization=hostile, venue=hostile + " " + "v" * 500))
    slack = slack_shows(reply)
    assert "<!channel>" not in slack and "<https://evil" not in slack
    assert "&lt;!channel&gt;" in slack
    discord = discord_shows(reply)
    assert "@everyone" not in discord  # broken by a zero-width space: pings nobody
    assert "\\[x\\]\\(https://evil.example\\)" in discord  # escaped: shown, not a link
    assert "v" * 100 not in slack + discord + console.render(reply)  # capped


def paper_row(**fields: object) -> Paper:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": "2401.00001",
        "title": "DPO",
        "sources": ["hf", "arxiv"],
        "first_seen_at": now,
        "updated_at": now,
    }
    values.update(fields)
    return Paper(**values)


def test_cards_read_organization_and_venue_from_the_stored_paper() -> None:
    card = to_card(
        paper_row(
            organization="  Stanford University ",
            arxiv_comment="Accepted at NeurIPS 2025; 12 pages",
        )
    )
    assert (card.organization, card.venue) == ("Stanford University", "NeurIPS 2025")
    findings = to_card(paper_row(arxiv_comment="ACL 2024 Findings"))
    assert findings.venue == "ACL 2024 Findings"
    plain = to_card(paper_row(organization=" ", arxiv_comment="Submitted to ICLR 2026"))
    assert (plain.organization, plain.venue) == (None, None)
