"""Discord rendering: every reply kind becomes messages Discord accepts and that ping nobody."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings, strategies as st

from adapters.discord_render import clip, escape, render
from bot.commands import help_text
from bot.messages import PaperCard, Reply, ReplyKind, error, info
from tests.adapters.discord_limits import assert_within_limits, message_text

NASTY = "@everyone <@123456789012345678> <@&123456789012345678> @here **bold** `x` _y_ ||spoiler||"


def card(
    n: int, *, title: str = "", abstract: str = "A short abstract.", **kw: object
) -> PaperCard:
    return PaperCard(
        id=f"2401.{n:05d}",
        title=title or f"Paper number {n}",
        url=f"https://arxiv.org/abs/2401.{n:05d}",
        authors=("Ada Lovelace", "Grace Hopper", "Alan Turing", "Emmy Noether"),
        published=date(2026, 6, 1),
        upvotes=n,
        abstract=abstract,
        **kw,  # type: ignore[arg-type]
    )


def test_search_results_are_one_embed_per_paper_with_links_and_a_heading() -> None:
    reply = Reply(
        kind=ReplyKind.RESULTS,
        title="Papers for dpo",
        cards=(card(1, abstract="We study DPO. " * 30, summary="DPO in one line."), card(2)),
        more=7,
        footer="words: dpo",
        ephemeral=True,
        query="dpo",
    )
    [message] = render(reply)
    assert_within_limits(message)
    assert message["content"] == "**Papers for dpo**"
    first, second = message["embeds"]
    assert first.title == "1. Paper number 1" and first.url == "https://arxiv.org/abs/2401.00001"
    assert "DPO in one line." in first.description
    assert "Ada Lovelace, Grace Hopper, Alan Turing et al." in first.description
    assert "▲ 2" in second.description
    assert second.footer.text == "+7 more · words: dpo"


def test_one_paper_in_detail_shows_abstract_fields_and_links() -> None:
    reply = Reply(
        kind=ReplyKind.PAPER,
        title="DPO",
        cards=(
            card(
                1,
                abstract="We introduce DPO.",
                categories=("cs.LG", "cs.CL"),
                github_repo="https://github.com/eric-mitchell/direct-preference-optimization",
                github_stars=2500,
                hf_url="https://huggingface.co/papers/2401.00001",
            ),
        ),
    )
    [message] = render(reply)
    assert_within_limits(message)
    [embed] = message["embeds"]
    fields = {f.name: f.value for f in embed.fields}
    assert embed.description == "We introduce DPO."
    assert fields["Categories"] == "cs.LG cs.CL"
    assert "[GitHub ★ 2,500](https://github.com/eric-mitchell" in fields["Links"]
    assert "[Hugging Face](https://huggingface.co/papers/2401.00001)" in fields["Links"]
    assert embed.footer.text == "arXiv:2401.00001"


def test_help_info_and_errors_render_as_one_embed() -> None:
    for reply in (info("paperboy: research papers in chat", help_text()), error("Bad", "Why.")):
        [message] = render(reply)
        assert_within_limits(message)
        assert "content" not in message
        [embed] = message["embeds"]
        assert embed.title == reply.title and embed.description == reply.text
    assert render(error("Bad"))[0]["embeds"][0].colour.value == 0xED4245


def test_mentions_in_titles_and_queries_ping_nobody_and_are_broken() -> None:
    reply = Reply(
        kind=ReplyKind.RESULTS, title=f"Papers for {NASTY}", cards=(card(1, title=NASTY),)
    )
    for message in render(reply):
        assert_within_limits(message)  # allowed_mentions is none
        shown = message_text(message)
        for ping in ("@everyone", "@here", "<@123456789012345678>", "<@&123456789012345678>"):
            assert ping not in shown


def test_markdown_in_paper_text_is_shown_literally() -> None:
    reply = Reply(kind=ReplyKind.RESULTS, title="t", cards=(card(1, abstract="x_i *y*"),))
    [message] = render(reply)
    assert r"x\_i \*y\*" in message["embeds"][0].description


def test_a_long_digest_is_split_into_continued_messages_without_losing_a_paper() -> None:
    cards = tuple(card(n, title="T" * 300, abstract="word " * 2000) for n in range(1, 31))
    reply = Reply(kind=ReplyKind.DIGEST, title="Your digest", cards=cards, more=4, footer="f")
    messages = render(reply)
    assert len(messages) >= 3
    for message in messages:
        assert_within_limits(message)
    assert messages[0]["content"] == "**Your digest**"
    for n, message in enumerate(messages[1:], 2):
        assert message["content"] == f"**Your digest** (continued, {n}/{len(messages)})"
    urls = [e.url for m in messages for e in m["embeds"]]
    assert urls == [c.url for c in cards]
    assert messages[-1]["embeds"][-1].footer.text == "+4 more · f"


def test_very_long_notice_text_is_split_not_cut() -> None:
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(200))
    messages = render(info("A long list", text))
    for message in messages:
        assert_within_limits(message)
    shown = "".join(message_text(m) for m in messages)
    assert "line 0 " in shown and "line 199 " in shown


def test_clip_never_leaves_a_dangling_escape() -> None:
    assert clip(escape("a" * 8 + "*bbb"), 10) == "a" * 8 + "…"
    assert len(clip("word " * 100, 50)) <= 50


text_st = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300
) | st.sampled_from([NASTY, "", " ", "\\", "*" * 400, "\n" * 50])
cards_st = st.lists(
    st.builds(
        PaperCard,
        id=st.just("2401.00001"),
        title=text_st,
        url=st.just("https://arxiv.org/abs/2401.00001"),
        authors=st.lists(text_st, max_size=30).map(tuple),
        abstract=st.text(max_size=20_000) | text_st,
        summary=text_st,
        categories=st.lists(text_st, max_size=5).map(tuple),
        matched_topics=st.lists(text_st, max_size=10).map(tuple),
        upvotes=st.integers(0, 10**6),
        github_repo=st.none() | st.just("https://github.com/a/b"),
        github_stars=st.none() | st.integers(0, 10**9),
        organization=st.none() | text_st,
        venue=st.none() | text_st,
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(list(ReplyKind)),
    title=text_st,
    text=text_st | st.text(max_size=10_000),
    cards=cards_st,
    more=st.integers(0, 500),
    footer=text_st,
)
def test_any_reply_renders_within_limits(
    kind: ReplyKind, title: str, text: str, cards: list[PaperCard], more: int, footer: str
) -> None:
    reply = Reply(kind=kind, title=title, text=text, cards=tuple(cards), more=more, footer=footer)
    messages = render(reply)
    assert messages
    for message in messages:
        assert_within_limits(message)
    if cards:  # split, never dropped
        assert sum(len(m["embeds"]) for m in messages) == len(cards)
