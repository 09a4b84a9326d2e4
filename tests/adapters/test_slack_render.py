"""Block Kit rendering on its own: what a Slack user sees, within Slack's limits, and safe."""

from __future__ import annotations

import json
from datetime import date

from hypothesis import HealthCheck, given, settings, strategies as st

from adapters.slack_render import (
    ACTION_ABSTRACT,
    ACTION_LIKE,
    ACTION_SHARE,
    ACTION_SUBSCRIBE,
    escape,
    fit,
    render,
    split_text,
)
from bot.commands import help_text
from bot.messages import PaperCard, Reply, ReplyKind, error, info
from tests.adapters.fake_slack import assert_valid_blocks

NASTY = "<!channel> <@U123> <https://evil|click> & <#C999> A<B>C"
MARKUP = " *bold* _it_ ~gone~ `code` ```x```"  # mrkdwn formatting has no escape


def card(n: int = 1, **kw: object) -> PaperCard:
    values: dict[str, object] = {
        "id": f"2401.{n:05d}",
        "title": f"Paper number {n}",
        "url": f"https://arxiv.org/abs/2401.{n:05d}",
        "authors": ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
        "published": date(2024, 1, 2),
        "upvotes": 42,
        "categories": ("cs.CL", "cs.LG"),
        "abstract": "We study preference optimization. " * 5,
    }
    values.update(kw)
    return PaperCard(**values)  # type: ignore[arg-type]


def all_text(messages: list[dict[str, object]]) -> str:
    """Everything Slack displays. Button values are left out: Slack never shows them, it hands
    them back to us verbatim on a click."""

    def shown(node: object) -> object:
        if isinstance(node, dict):
            return {k: shown(v) for k, v in node.items() if k != "value"}
        if isinstance(node, list):
            return [shown(v) for v in node]
        return node

    return json.dumps(shown(messages), ensure_ascii=False)


def test_escape_the_three_control_characters_and_neutralise_formatting() -> None:
    assert escape("A<B & C>D <!channel> don't") == "A&lt;B &amp; C&gt;D &lt;!channel&gt; don't"
    hostile = "*bold* _it_ ~gone~ `code` ```block```"
    assert not set(escape(hostile)) & set("*_~`")
    assert len(escape(hostile)) == len(hostile)  # look-alikes: one character each
    assert fit("a & b", 7) == "a &amp;…" or len(fit("a & b", 7)) <= 7


def test_search_results_show_each_paper_with_facts_and_buttons() -> None:
    reply = Reply(
        kind=ReplyKind.RESULTS,
        title="Papers for dpo",
        cards=(
            card(
                1,
                abstract="We study preference optimization. " * 10,
                github_repo="https://github.com/x/y",
                github_stars=99,
                summary="One line.",
            ),
            card(2),
        ),
        more=7,
        footer="sorted by relevance",
        ephemeral=True,
        query="dpo",
    )
    [message] = render(reply, source_text="dpo")
    assert_valid_blocks(message)
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"] == "Papers for dpo"
    first = blocks[1]["text"]["text"]
    assert "*<https://arxiv.org/abs/2401.00001|Paper number 1>*" in first
    assert "Ada Lovelace, Alan Turing, Grace Hopper et al." in first
    assert "2024-01-02" in first and "▲ 42" in first and "cs.CL cs.LG" in first
    assert "<https://github.com/x/y|code> ★ 99" in first
    assert "One line." in first  # the HF summary stands in for a long abstract
    assert blocks[1]["accessory"]["action_id"].startswith(ACTION_ABSTRACT)
    assert blocks[1]["accessory"]["value"] == "2401.00001"
    # Under each card its "More like this" button; every action_id unique in the message.
    assert [(e["action_id"], e["value"]) for e in blocks[2]["elements"]] == [
        (f"{ACTION_LIKE}_1", "2401.00001")
    ]
    assert blocks[1]["accessory"]["action_id"] != blocks[3]["accessory"]["action_id"]
    action_ids = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert len(action_ids) == len(set(action_ids))
    assert "+7 more" in json.dumps(blocks)
    actions = blocks[-1]
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        (ACTION_SHARE, "dpo"),
        (ACTION_SUBSCRIBE, "dpo"),
    ]
    assert "Paper number 1" in message["text"]


def test_shared_copy_and_channel_replies_have_no_share_button() -> None:
    reply = Reply(kind=ReplyKind.RESULTS, title="t", cards=(card(),), query="dpo")
    [message] = render(reply, source_text="dpo")  # not ephemeral: nothing to share
    assert ACTION_SHARE not in json.dumps(message)
    [message] = render(reply, actions=False)
    assert ACTION_SUBSCRIBE not in json.dumps(message)
    assert_valid_blocks(message)


def test_nasty_titles_ping_nobody_and_link_nowhere() -> None:
    nasty = card(
        1,
        title=NASTY + MARKUP,
        authors=(NASTY + MARKUP,),
        abstract=NASTY + MARKUP,
        summary=NASTY + MARKUP,
        categories=(NASTY,),
        github_repo="<!channel>",
        project_page="javascript:alert(1)",
        matched_topics=(NASTY,),
    )
    for kind in ReplyKind:
        reply = Reply(
            kind=kind,
            title=NASTY + MARKUP,
            text=NASTY + MARKUP,
            cards=(nasty,),
            footer=NASTY + MARKUP,
            query=NASTY,
            ephemeral=True,
        )
        messages = render(reply, source_text=NASTY + MARKUP)
        for message in messages:
            assert_valid_blocks(message)  # also: every <...> is one of our links
        dump = all_text(messages)
        for bad in ("<!channel>", "<@U123>", "<https://evil", "<#C999>", "<!channel|"):
            assert bad not in dump
        assert "&lt;!channel&gt;" in dump
        for formatting in ("*bold*", "_it_", "~gone~", "`code`", "```"):
            assert formatting not in dump
        # A link label is escaped too: the title inside <url|title>.
        if kind is not ReplyKind.INFO:
            assert "|&lt;!channel&gt; &lt;@U123&gt;" in dump


def test_paper_detail_shows_the_full_abstract_and_links() -> None:
    long_abstract = "word " * 1500  # 7,500 characters: three sections
    paper = card(
        hf_url="https://huggingface.co/papers/2401.00001",
        abstract=long_abstract.strip(),
        summary="The gist.",
        project_page="https://example.org/p",
    )
    messages = render(Reply(kind=ReplyKind.PAPER, title=paper.title, cards=(paper,)))
    for message in messages:
        assert_valid_blocks(message)
    dump = all_text(messages)
    assert dump.count("word") == 1500
    assert "The gist." in dump
    assert "<https://huggingface.co/papers/2401.00001|Hugging Face>" in dump
    assert "<https://example.org/p|project page>" in dump


def test_long_digest_continues_in_further_messages_marked_continued() -> None:
    cards = tuple(
        card(
            n,
            abstract="x " * 5000,
            summary="",
            title=f"T{n} " + "long title " * 40,
            matched_topics=("dpo", "rlhf"),
        )
        for n in range(1, 61)
    )
    reply = Reply(
        kind=ReplyKind.DIGEST,
        title="Your digest: 60 new papers",
        cards=cards,
        more=3,
        footer="next digest Tue 09:00",
    )
    messages = render(reply, actions=False)
    assert len(messages) > 1
    for message in messages:
        assert_valid_blocks(message)
    for n, message in enumerate(messages[1:], 2):
        marker = message["blocks"][0]
        assert marker["type"] == "context"
        assert f"continued (part {n} of {len(messages)})" in marker["elements"][0]["text"]
        assert "continued" in message["text"]
    dump = all_text(messages)
    assert all(f"T{n} long title" in dump for n in range(1, 61))  # nothing dropped
    assert "_matched: dpo, rlhf_" in dump
    assert "+3 more" in all_text(messages[-1:])


def test_help_and_errors_render_within_limits() -> None:
    for reply in (
        info("paperboy: research papers in chat", help_text()),
        info("big", "line\n" * 3000),
        error("I could not read that search.", "Try `/papers dpo`."),
    ):
        messages = render(reply)
        for message in messages:
            assert_valid_blocks(message)
    [message] = render(error("Nope & <no>.", "Try `/papers dpo`."))
    assert message["blocks"][0]["text"]["text"] == ":warning: *Nope &amp; &lt;no&gt;.*"
    assert "/papers help" in all_text(render(info("paperboy", help_text())))


def test_split_text_never_cuts_an_entity() -> None:
    pieces = split_text("&" * 1000 + " <" * 400, 97)
    assert all(len(p) <= 97 for p in pieces)
    joined = "".join(pieces)
    assert joined.replace("&amp;", "").replace("&lt;", "").replace(" ", "") == ""


_text = st.lists(
    st.sampled_from(list("ab <>&|*_`@!#\n") + ["é", "😀", "<!channel>", "<@U1>", "&amp;"]),
    max_size=200,
).map("".join)


@st.composite
def cards_strategy(draw: st.DrawFn) -> PaperCard:
    n = draw(st.integers(1, 99_999))
    return card(
        n,
        title=draw(_text) or "t",
        authors=tuple(draw(st.lists(_text, max_size=60))),
        abstract=draw(st.one_of(_text, st.just("long abstract " * 300))),
        summary=draw(_text),
        categories=tuple(draw(st.lists(_text, max_size=5))),
        github_repo=draw(st.sampled_from([None, "https://github.com/a/b", "<!here>", "x"])),
        github_stars=draw(st.none() | st.integers(0, 10**9)),
        organization=draw(st.none() | _text),
        venue=draw(st.none() | _text),
        upvotes=draw(st.integers(0, 10_000)),
        matched_topics=tuple(draw(st.lists(_text, max_size=4))),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(list(ReplyKind)),
    cards=st.lists(cards_strategy(), max_size=55),
    title=_text,
    text=st.one_of(_text, st.just("help line\n" * 400)),
    more=st.integers(0, 500),
    ephemeral=st.booleans(),
)
def test_any_reply_renders_within_limits(
    kind: ReplyKind, cards: list[PaperCard], title: str, text: str, more: int, ephemeral: bool
) -> None:
    reply = Reply(
        kind=kind,
        title=title,
        text=text,
        cards=tuple(cards),
        more=more,
        footer=title,
        ephemeral=ephemeral,
        query=title or None,
    )
    messages = render(reply, source_text=title)
    assert messages
    for message in messages:
        assert_valid_blocks(message)
    dump = all_text(messages)
    for c in cards:  # every paper is shown (linked by its URL) somewhere
        assert c.url in dump
