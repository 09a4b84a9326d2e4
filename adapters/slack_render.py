"""Block Kit rendering of a `Reply`: pure functions, no I/O, no Slack SDK.

`render(reply)` returns one or more messages (`{"text": ..., "blocks": [...]}`), each within
Slack's limits (platforms.md S-OUT-3/4): at most 50 blocks, section text <= 3,000 characters,
header <= 150, button text <= 75 and value <= 2,000, a top-level `text` (the notification and
screen-reader fallback) <= 4,000, and all block text together under about 12,000 characters (an
undocumented cap, `msg_blocks_too_long`, sits near 13.2k). A reply that does not fit continues in
further messages, each marked "continued"; the adapter posts those in the thread of the first.

Every piece of paper or user text goes through `escape` (S-OUT-5): `&`, `<` and `>` become
entities, so a title like `<!channel> <@U1> <https://evil|x>` pings nobody and links nowhere, and
mrkdwn's `*`, `_`, `~` and backtick become look-alikes (mrkdwn has no escape for them), so a
title cannot turn the rest of a message bold or into code. The only `<...>` sequences in our
output are the links we build from checked http(s) URLs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.messages import PaperCard, Reply, ReplyKind, safe_url as checked_url, shorten

MAX_BLOCKS = 50
SECTION_TEXT = 3_000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2_000
FALLBACK_TEXT = 3_000  # Slack recommends <= 4,000 for the top-level text
MESSAGE_TEXT_BUDGET = 11_000  # all block text of one message; the observed cap is ~13.2k
# Room left in every message for a continuation marker and the closing blocks.
_BLOCK_BUDGET = MAX_BLOCKS - 4

# action_ids the adapter listens for.
ACTION_SHARE = "paperboy_share"
ACTION_SUBSCRIBE = "paperboy_subscribe"
ACTION_ABSTRACT = "paperboy_abstract"  # suffixed with the card's number: unique per message
ACTION_LIKE = "paperboy_like"  # "More like this", suffixed the same way

Block = dict[str, Any]
Message = dict[str, Any]


# ------------------------------------------------------------------------------ text


# mrkdwn has no escape for its formatting characters (`*bold*`, `_italic_`, `~strike~`,
# `` `code` ``): in paper and user text they become look-alikes that Slack never formats.
_MARKERS = (("*", "\u2217"), ("_", "\uff3f"), ("~", "\u223c"), ("`", "\u02cb"))


def escape(text: str) -> str:
    """Slack's three control characters as entities, and mrkdwn's formatting characters as
    look-alikes (one character each, so lengths hold); nothing else is touched."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for marker, look_alike in _MARKERS:  # str.replace: several times faster than translate
        text = text.replace(marker, look_alike)
    return text


def fit(text: str, limit: int) -> str:
    """`text` shortened at a word and escaped, within `limit` characters after escaping."""
    budget = limit
    while True:
        out = escape(shorten(text, budget))
        if len(out) <= limit:
            return out
        # Entities made it longer: cut the plain text by what escaping added.
        budget -= max(len(out) - limit, 1)


def split_text(text: str, limit: int) -> list[str]:
    """Escaped `text` in pieces of at most `limit` characters, cut between words (or inside a
    word longer than a piece), never inside an entity. Line breaks are kept."""
    pieces: list[str] = []
    current = ""
    for token in re.split(r"(\s+)", text):
        if not token:
            continue
        escaped = escape(token)
        if len(current) + len(escaped) <= limit:
            current += escaped
            continue
        if current.strip():
            pieces.append(current.rstrip())
        current = ""
        if token.isspace():
            continue
        # A single "word" longer than a piece: cut it by characters.
        for char in token:
            esc = escape(char)
            if len(current) + len(esc) > limit:
                pieces.append(current)
                current = ""
            current += esc
    if current.strip():
        pieces.append(current.rstrip())
    return pieces


def safe_url(url: str | None) -> str | None:
    """`url`, checked by the shared validator (`bot.links`), escaped for `<url|label>`."""
    checked = checked_url(url)
    return checked.replace("&", "&amp;") if checked else None


def link(url: str | None, label: str, limit: int = 500) -> str:
    """`<url|label>` with an escaped label, or the escaped label alone when the URL is unsafe."""
    label_text = fit(label, limit) or "link"
    checked = safe_url(url)
    return f"<{checked}|{label_text}>" if checked else label_text


# ------------------------------------------------------------------------------ blocks


def header(text: str) -> Block:
    # Header text is plain_text; it is escaped too, because Slack decodes the three entities
    # in every text object and we never want a raw `<` from user data anywhere.
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": fit(text, HEADER_TEXT) or "paperboy", "emoji": True},
    }


def section(mrkdwn: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": fit(text, BUTTON_TEXT), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


# ------------------------------------------------------------------------------ papers


def paper_meta(card: PaperCard, *, authors: int = 3) -> str:
    """One line: authors · organization · date · venue · ▲ upvotes · categories · code ★ stars ·
    project page. Only a checked https GitHub URL becomes the code link."""
    bits = [fit(bit, 300) for bit in card.facts(authors)]
    if card.categories:
        bits.append(fit(" ".join(card.categories[:3]), 100))
    if card.code_url:
        stars = f" {card.stars}" if card.stars else ""
        bits.append(link(card.code_url, "code") + stars)
    if safe_url(card.project_page):
        bits.append(link(card.project_page, "project page"))
    return " · ".join(bits)


def paper_section(
    card: PaperCard, n: int | None, *, abstract_button: bool, index: int = 0
) -> Block:
    """A paper in a list: linked title, the facts line, the one-line summary or short abstract,
    and (in digests) the topics it matched. Under 1,500 characters whatever the paper holds."""
    number = f"{n}. " if n is not None else ""
    lines = [f"{number}*{link(card.url, card.title, 400)}*"]
    meta = paper_meta(card)
    if meta:
        lines.append(meta)
    if card.matched_topics:
        lines.append("_matched: " + fit(", ".join(card.matched_topics), 200) + "_")
    if card.reason:
        lines.append("_" + fit(card.reason, 120) + "_")
    blurb = card.blurb(280)
    if blurb:
        lines.append(fit(blurb, 600))
    accessory = None
    if abstract_button and card.abstract and len(card.id) <= BUTTON_VALUE:
        accessory = button("Abstract", f"{ACTION_ABSTRACT}_{index}", card.id)
    return section("\n".join(lines), accessory)


def like_actions(card: PaperCard, index: int = 0) -> list[Block]:
    """The card's "More like this" button, in an actions block under it (a section holds one
    accessory, the Abstract button). Its value is the paper's id, which the adapter checks."""
    if not card.id or len(card.id) > BUTTON_VALUE:
        return []
    like = button("More like this", f"{ACTION_LIKE}_{index}", card.id)
    return [{"type": "actions", "elements": [like]}]


def listed(card: PaperCard, n: int | None, index: int) -> list[Block]:
    """A paper in a list with its "More like this" button: one unit, never split."""
    return [paper_section(card, n, abstract_button=True, index=index), *like_actions(card, index)]


def paper_detail(card: PaperCard) -> list[list[Block]]:
    """One paper in full: title, facts, HF summary, the whole abstract, links.

    Returned as units (lists of blocks kept together) so a very long abstract can move on to a
    continuation message.
    """
    head = [header(card.title)]
    facts = [f"*{link(card.url, card.title, 400)}*", paper_meta(card, authors=8)]
    if len(card.authors) > 8:
        facts.append("Authors: " + fit(", ".join(card.authors), 1_500))
    head.append(section("\n".join(f for f in facts if f)))
    units = [head]
    if card.summary:
        units.append([section("*In one line:* " + fit(card.summary, 1_000))])
    for n, piece in enumerate(split_text(card.abstract, SECTION_TEXT - 20)):
        units.append([section(("*Abstract*\n" if n == 0 else "") + piece)])
    links = [link(card.url, "arXiv")]
    if card.hf_url:
        links.append(link(card.hf_url, "Hugging Face"))
    if card.code_url:
        links.append(link(card.code_url, "code"))
    if safe_url(card.project_page):
        links.append(link(card.project_page, "project page"))
    units.append([context(" · ".join(links)), *like_actions(card)])
    return units


# ------------------------------------------------------------------------------ replies


@dataclass
class _Draft:
    """Blocks being packed into one message."""

    blocks: list[Block] = field(default_factory=list)
    chars: int = 0


def block_text_length(blocks: Iterable[Block]) -> int:
    """All text a message's blocks carry (what Slack's total-length cap counts)."""
    return sum(_text_length(block) for block in blocks)


def _text_length(node: Any) -> int:
    if isinstance(node, dict):
        total = 0
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                total += len(value)
            else:
                total += _text_length(value)
        return total
    if isinstance(node, list):
        return sum(_text_length(item) for item in node)
    return 0


def render(reply: Reply, *, source_text: str | None = None, actions: bool = True) -> list[Message]:
    """`reply` as Slack messages: the first answers, the rest continue it (in its thread).

    `source_text` is the `/papers` text that produced the reply: an ephemeral result list gets a
    "Share" button that re-runs it for the whole channel. `actions=False` leaves out Share and
    Subscribe (for the copy that is shared, and for digests).
    """
    head, units = _body(reply)
    tail = _closing(reply)
    if actions:
        tail += _actions(reply, source_text)
    fallback = fit(_fallback(reply), FALLBACK_TEXT) or "paperboy"
    if not (head or units or tail):
        head.append(section(fallback))
    drafts = _pack(head, units, tail)
    messages: list[Message] = []
    for n, draft in enumerate(drafts, 1):
        blocks = draft.blocks
        text = fallback
        if n > 1:
            marker = f"_…continued (part {n} of {len(drafts)})_"
            blocks = [context(marker), *blocks]
            text = fit(f"…continued (part {n} of {len(drafts)}): {reply.title}", FALLBACK_TEXT)
        messages.append({"text": text, "blocks": blocks})
    return messages


def _body(reply: Reply) -> tuple[list[Block], list[list[Block]]]:
    """The heading blocks, and the units (blocks kept together) of text and papers."""
    head: list[Block] = []
    units: list[list[Block]] = []
    if reply.kind is ReplyKind.PAPER and reply.cards:
        units.extend(paper_detail(reply.cards[0]))
        for n, card in enumerate(reply.cards[1:], 2):
            units.append(listed(card, n, n))
        return head, units
    title = reply.title if reply.title.strip() else ""
    if reply.kind is ReplyKind.ERROR:
        # A section, not a header: errors stay small and the warning sign leads.
        head.append(section(":warning: *" + fit(title, 500) + "*"))
    elif title:
        head.append(header(title) if reply.cards else section("*" + fit(title, 500) + "*"))
    for piece in split_text(reply.text, SECTION_TEXT):
        units.append([section(piece)])
    numbered = reply.kind is not ReplyKind.INFO
    for n, card in enumerate(reply.cards, 1):
        units.append(listed(card, n if numbered else None, n))
    return head, units


def _closing(reply: Reply) -> list[Block]:
    closing = []
    if reply.more:
        closing.append(f"+{reply.more} more")
    if reply.footer.strip():
        closing.append(fit(reply.footer, 1_500))
    return [context(" · ".join(closing))] if closing else []


def _actions(reply: Reply, source_text: str | None) -> list[Block]:
    """Share (an ephemeral result list, again for the channel) and Subscribe buttons."""
    if reply.kind is not ReplyKind.RESULTS or not reply.cards:
        return []
    buttons = []
    if reply.ephemeral and source_text and len(source_text) <= BUTTON_VALUE:
        buttons.append(button("Share", ACTION_SHARE, source_text, "primary"))
    if reply.query and len(reply.query) <= BUTTON_VALUE:
        buttons.append(button("Subscribe this channel", ACTION_SUBSCRIBE, reply.query))
    return [{"type": "actions", "elements": buttons}] if buttons else []


def _pack(head: list[Block], units: list[list[Block]], tail: list[Block]) -> list[_Draft]:
    """Greedy packing of units into messages within the block and text budgets."""
    drafts = [_Draft()]

    def add(blocks: list[Block]) -> None:
        size = block_text_length(blocks)
        draft = drafts[-1]
        fits = (
            len(draft.blocks) + len(blocks) <= _BLOCK_BUDGET
            and draft.chars + size <= MESSAGE_TEXT_BUDGET
        )
        if draft.blocks and not fits:
            draft = _Draft()
            drafts.append(draft)
        draft.blocks.extend(blocks)
        draft.chars += size

    if head:
        add(head)
    for unit in units:
        add(unit)
    if tail:
        add(tail)
    return drafts


def _fallback(reply: Reply) -> str:
    """The notification text: the title, then the papers' titles."""
    parts = [reply.title] if reply.title else []
    if reply.cards:
        parts.extend(f"{n}. {card.title}" for n, card in enumerate(reply.cards, 1))
    elif reply.text:
        parts.append(reply.text)
    return "\n".join(parts)
