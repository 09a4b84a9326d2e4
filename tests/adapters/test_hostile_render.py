"""Hostile paper and reply fields, rendered by Slack, Discord and the console, for every reply
kind: no link, mention or formatting gets out of the field it came in.

Every URL that ends up as a link must be one the shared validator accepts; every other piece of
text is shown literally.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import discord
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adapters import console, discord_render as discord_adapter, slack_render
from bot.links import MAX_URL_CHARS, github_url, safe_url
from bot.messages import PaperCard, Reply, ReplyKind

FRAGMENTS = [
    "<!channel>",
    "<!here>",
    "<@U0123ABCD>",
    "<#C0123|general>",
    "@everyone",
    "@here",
    "<@123456789012345678>",
    "<@&123456789012345678>",
    "<https://evil.example|Reset your password>",
    "[Claim your prize](https://evil.example/prize)",
    "[x](<https://evil.example>)",
    "*bold*",
    "**bold**",
    "_it_",
    "~strike~",
    "`code`",
    "```block",
    "||spoiler||",
    "> quote",
    "# Heading",
    "\\",
    "&amp;",
    "&lt;!channel&gt;",
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "\x07\x08\r\x00",
    "\u202eevil",
    "https://evil.example/a)b",
    " ",
    "\n",
    "ok",
]

URLS = [
    None,
    "",
    "https://github.com/org/repo_name",
    "https://example.org/project?a=1&b=2",
    "http://example.org/page#top",
    "javascript:alert(1)",
    "data:text/html,<script>",
    "https://evil.example/x)[Claim your prize](https://evil.example",
    "https://huggingface.co@evil.example/",
    "https://evil.example/<!channel>",
    "https://evil.example/a|b",
    "https://evil.example/a b",
    "https://evil.example/\nnext",
    "https://evil.example/`x`",
    "https://evil.example/" + "a" * (MAX_URL_CHARS + 10),
    "ftp://files.example/x",
    "https://",
    "//evil.example/x",
]

hostile_text = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=10).map("".join),
    st.sampled_from(FRAGMENTS).map(lambda f: f * 700),  # huge fields
)
hostile_url = st.sampled_from(URLS) | hostile_text


@st.composite
def cards(draw: Any) -> PaperCard:
    return PaperCard(
        id=draw(st.sampled_from(["2401.00001", "2401.00002"])),
        title=draw(hostile_text),
        url=draw(st.sampled_from(["https://arxiv.org/abs/2401.00001", *URLS[5:9]])),
        authors=tuple(draw(st.lists(hostile_text, max_size=4))),
        published=date(2026, 6, 1),
        upvotes=draw(st.integers(0, 10_000)),
        categories=tuple(draw(st.lists(hostile_text, max_size=3))),
        abstract=draw(hostile_text),
        summary=draw(hostile_text),
        github_repo=draw(hostile_url),
        github_stars=draw(st.none() | st.integers(0, 10**6)),
        project_page=draw(hostile_url),
        organization=draw(st.none() | hostile_text),
        venue=draw(st.none() | hostile_text),
        hf_url=draw(st.sampled_from([None, "https://huggingface.co/papers/2401.00001"])),
        matched_topics=tuple(draw(st.lists(hostile_text, max_size=3))),
    )


@st.composite
def replies(draw: Any, kind: ReplyKind) -> Reply:
    with_cards = kind in (ReplyKind.RESULTS, ReplyKind.PAPER, ReplyKind.DIGEST)
    return Reply(
        kind=kind,
        title=draw(hostile_text),
        text=draw(hostile_text),
        cards=tuple(draw(st.lists(cards(), min_size=1, max_size=4))) if with_cards else (),
        more=draw(st.integers(0, 5)),
        footer=draw(hostile_text),
        ephemeral=draw(st.booleans()),
        query=draw(st.none() | hostile_text),
    )


def allowed_urls(reply: Reply) -> set[str]:
    urls = set()
    for card in reply.cards:
        for url in (card.url, card.hf_url, card.project_page):
            checked = safe_url(url)
            if checked:
                urls.add(checked)
        code = github_url(card.github_repo)  # the code link: https GitHub only
        if code:
            urls.add(code)
    return urls


KINDS = list(ReplyKind)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------- Slack

_SLACK_LINK = re.compile(r"<([^<>|]*)\|([^<>]*)>")


def slack_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                out.extend(slack_texts(value))
        return out
    if isinstance(node, list):
        return [t for item in node for t in slack_texts(item)]
    return []


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_slack_lets_no_link_or_mention_out(kind: ReplyKind, data: Any) -> None:
    reply = data.draw(replies(kind))
    allowed = {u.replace("&", "&amp;") for u in allowed_urls(reply)}
    for message in slack_render.render(reply, source_text=reply.query):
        for text in slack_texts(message):
            for url, _label in _SLACK_LINK.findall(text):
                assert url in allowed, f"link to {url!r} in {text[:200]!r}"
            rest = _SLACK_LINK.sub("", text)
            # Outside our own links no control sequence survives: no <!channel>, <@U..>,
            # <#C..>, <url|label>.
            assert "<" not in rest and ">" not in rest, rest[:300]


# -------------------------------------------------------------------------------- Discord

_MD_LINK = re.compile(r"(?<!\\)\[([^\]]*)\]\(([^)]*)\)")
_OUR_LABELS = re.compile(r"^(arXiv|Hugging Face|GitHub( ★ [\d,]+)?|Project page)$")
_MENTION = re.compile(r"<@[!&]?\d+>|<#\d+>|(?<![\\])@(everyone|here)")
_MARKDOWN = re.compile(r"(?<!\\)[*_~`|]")


def discord_parts(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) of every piece of text a Discord message shows."""
    parts = [("content", message.get("content") or "")]
    for embed in message["embeds"]:
        data = embed.to_dict()
        parts.append(("title", data.get("title", "")))
        parts.append(("description", data.get("description", "")))
        parts.append(("footer", data.get("footer", {}).get("text", "")))
        for f in data.get("fields", []):
            parts.append((f"field:{f['name']}", f["value"]))
        if "url" in data:
            parts.append(("url", data["url"]))
    return parts


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_discord_lets_no_link_mention_or_markdown_out(kind: ReplyKind, data: Any) -> None:
    reply = data.draw(replies(kind))
    allowed = allowed_urls(reply)
    for message in discord_adapter.render(reply):
        mentions = message["allowed_mentions"]
        assert isinstance(mentions, discord.AllowedMentions)
        assert not (mentions.everyone or mentions.users or mentions.roles)
        for where, text in discord_parts(message):
            if where == "url":
                assert text in allowed
                continue
            for label, url in _MD_LINK.findall(text):
                assert url in allowed, f"{where}: link to {url!r}"
                assert _OUR_LABELS.match(label), f"{where}: link label {label!r}"
            rest = _MD_LINK.sub("", text)
            assert not _MENTION.search(rest), f"{where}: {rest[:300]!r}"
            if reply.cards and where in (
                "description",
                "field:Authors",
                "field:In one line",
                "field:Organization",
                "field:Venue",
            ):
                # Paper text is shown literally: every markdown character is escaped.
                assert not _MARKDOWN.search(rest), f"{where}: {rest[:300]!r}"


# -------------------------------------------------------------------------------- console

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_console_prints_no_control_sequence_or_unchecked_url(kind: ReplyKind, data: Any) -> None:
    reply = data.draw(replies(kind))
    out = console.render(reply)
    assert not _CONTROL.search(out), repr(_CONTROL.search(out))


@pytest.mark.parametrize("url", URLS)
def test_console_shows_a_source_url_only_when_it_is_safe(url: str | None) -> None:
    card = PaperCard(
        id="2401.00001", title="T", url="https://arxiv.org/abs/2401.00001", github_repo=url
    )
    out = console.render(Reply(kind=ReplyKind.RESULTS, title="Papers", cards=(card,)))
    links = out.splitlines()[-1].split()
    expected = ["https://arxiv.org/abs/2401.00001"] + ([url] if github_url(url) else [])
    assert links == expected


# ------------------------------------------------------------------------------ validator


@pytest.mark.parametrize("url", URLS[5:] + ["https://a.example/[x]", "https://a.example/\x00"])
def test_the_validator_rejects_unsafe_urls(url: str) -> None:
    assert safe_url(url) is None


@pytest.mark.parametrize(
    ("url", "is_code"),
    [
        ("https://github.com/org/repo", True),
        ("https://www.github.com/org/repo", True),
        ("http://github.com/org/repo", False),  # not https
        ("https://github.com.evil.example/org/repo", False),
        ("https://gitlab.com/org/repo", False),
        ("https://github.com@evil.example/org/repo", False),
    ],
)
def test_only_a_checked_https_github_url_is_a_code_link(url: str, is_code: bool) -> None:
    assert (github_url(url) == url) is is_code


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo_name",
        "http://example.org/page#top",
        "https://example.org/project?a=1&b=2",
        "https://arxiv.org/abs/2401.00001v2",
    ],
)
def test_the_validator_keeps_ordinary_urls(url: str) -> None:
    assert safe_url(url) == url
