"""Discord rendering: a `Reply` as Discord messages (embeds), pure and within Discord's limits.

Paper text is hostile: it is escaped (no markdown, links or mentions) and every message carries
`allowed_mentions=none`; URLs pass the core's one check (`safe_url`) before they become links.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.messages import (
    ORGANIZATION_CHARS,
    VENUE_CHARS,
    PaperCard,
    Reply,
    ReplyKind,
    safe_url,
    shorten,
)

# Discord message limits (platforms.md D-MSG-1). A violation is a 400 (50035), i.e. a lost post.
CONTENT_MAX = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL_MAX = 6000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048

COLOURS = {
    ReplyKind.RESULTS: 0x5865F2,
    ReplyKind.PAPER: 0x5865F2,
    ReplyKind.DIGEST: 0x57F287,
    ReplyKind.INFO: 0x99AAB5,
    ReplyKind.ERROR: 0xED4245,
}


def no_mentions() -> discord.AllowedMentions:
    """Every message the bot sends pings nobody: paper titles and queries are untrusted text."""
    return discord.AllowedMentions.none()


def neutralise(text: str) -> str:
    """Break `@everyone`, `@here`, `<@id>` and `<@&id>` (defence in depth behind
    `allowed_mentions`, which already stops every ping), and `[label](url)` masked links (a
    zero-width space after `]`), in our own texts that quote what a user typed."""
    return discord.utils.escape_mentions(text).replace("](", "]\u200b(")


# Discord hides a backslash before any ASCII punctuation, so escaping is invisible. These are
# the characters that start or end formatting, links (`[..](..)`, `<url>`), mentions, custom
# emoji and timestamps (`<...>`), spoilers and quotes anywhere in a line.
_MARKDOWN_CHARS = re.compile(r"([\\*_~`|<>\[\]()])")
# Headings (`#`), subtext (`-#`), lists (`-`, `*`, `+`) and quotes only start a line.
_LINE_START = re.compile(r"^(\s*)([#>+-])", re.MULTILINE)
# C0/C1 controls other than newline and tab (and bidi overrides that reorder what is read).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """Paper text (titles, authors, abstracts) as literal text: no markdown, no links, no
    mentions. discord.py's `escape_markdown` leaves URLs and `[..](..)` alone, so a masked link
    in an abstract would still be a link: every formatting character is escaped instead."""
    text = _CONTROL.sub("", text)
    text = _MARKDOWN_CHARS.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    return neutralise(text)


def clip(text: str, limit: int, placeholder: str = "…") -> str:
    """Cut `text` to at most `limit` characters, at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(placeholder), 0)]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit // 2:
        cut = cut[:space]
    cut = cut.rstrip()
    # An escaped character cut in half would leave a lone backslash escaping the placeholder.
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + placeholder


def _chunks(text: str, limit: int) -> list[str]:
    """Split text into pieces of at most `limit` characters, at line or word boundaries."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _meta(card: PaperCard, authors: int = 3) -> str:
    bits = [escape(bit) for bit in card.facts(authors)]
    if card.comments:
        bits.append(f"💬 {card.comments}")
    return " · ".join(bits)


def _links(card: PaperCard) -> str:
    """Markdown links with our own labels; a URL the shared validator rejects is left out
    (Hugging Face's `github_repo`/`project_page` are free text, and `[..](url)` would show
    whatever label and target they carry)."""
    stars = f" {card.stars}" if card.stars else ""
    candidates = (
        ("arXiv", card.url),
        ("Hugging Face", card.hf_url),
        (f"GitHub{stars}", card.code_url),  # only a checked https GitHub URL
        ("Project page", card.project_page),
    )
    links = []
    for label, url in candidates:
        checked = safe_url(url)
        if checked:
            links.append(f"[{label}]({checked})")
    return " · ".join(links)


def card_embed(card: PaperCard, number: int | None, colour: int) -> discord.Embed:
    """One paper in a list (search results, top, digest)."""
    prefix = f"{number}. " if number is not None else ""
    parts = [_meta(card)]
    blurb = card.blurb(300)
    if blurb:
        parts.append(escape(blurb))
    if card.matched_topics:
        parts.append(clip("Topics: " + escape(", ".join(card.matched_topics)), 300))
    if card.reason:
        parts.append(clip(escape(card.reason), 120))
    parts.append(_links(card))
    embed = discord.Embed(
        title=clip(prefix + neutralise(_title(card)), TITLE_MAX),
        url=safe_url(card.url),
        description=clip("\n".join(p for p in parts if p.strip()), 1800),
        colour=colour,
    )
    return embed


def _title(card: PaperCard) -> str:
    # Discord trims whitespace and rejects an empty title field; a paper always has its id.
    return " ".join(card.title.split()) or f"arXiv:{card.id}"


def _field(embed: discord.Embed, name: str, value: str, *, inline: bool = True) -> None:
    """Add a field only when it has something to show (Discord rejects blank values)."""
    value = clip(value.strip(), FIELD_VALUE_MAX)
    if value:
        embed.add_field(name=name, value=value, inline=inline)


def paper_embed(card: PaperCard) -> discord.Embed:
    """One paper in detail: the abstract, authors, dates, counts and links."""
    abstract = escape(card.abstract.strip())
    embed = discord.Embed(
        title=clip(neutralise(_title(card)), TITLE_MAX),
        url=safe_url(card.url),
        description=clip(abstract, DESCRIPTION_MAX) if abstract else None,
        colour=COLOURS[ReplyKind.PAPER],
    )
    _field(embed, "Authors", escape(card.short_authors(12)), inline=False)
    _field(embed, "Organization", escape(shorten(card.organization or "", ORGANIZATION_CHARS)))
    _field(embed, "Venue", escape(shorten(card.venue or "", VENUE_CHARS)))
    _field(embed, "In one line", escape(card.summary), inline=False)
    if card.published:
        _field(embed, "Published", card.published.isoformat())
    if card.upvotes:
        _field(embed, "Upvotes", f"▲ {card.upvotes}")
    _field(embed, "Categories", escape(" ".join(c for c in card.categories if c.strip())))
    _field(embed, "Links", _links(card), inline=False)
    embed.set_footer(text=f"arXiv:{card.id}")
    return _fit(embed)


def _notice_embeds(reply: Reply) -> list[discord.Embed]:
    """Info, help, status, errors and empty results: a title and text, split if long."""
    colour = COLOURS[reply.kind]
    title = neutralise(" ".join(reply.title.split()))
    text = neutralise(reply.text.strip())
    if not title and not text:
        title = "Nothing to show."
    if len(title) > TITLE_MAX:  # keep every word: the rest of the title opens the text
        text = f"…{title[TITLE_MAX - 1 :]}\n{text}".strip()
        title = title[: TITLE_MAX - 1] + "…"
    pieces = _chunks(text, DESCRIPTION_MAX) or [""]
    embeds = []
    for n, piece in enumerate(pieces):
        embed = discord.Embed(
            title=(title or None) if n == 0 else None,
            description=piece or None,
            colour=colour,
        )
        embeds.append(embed)
    return embeds


def _fit(embed: discord.Embed) -> discord.Embed:
    """Shrink the description so one embed alone stays within the 6,000-character total."""
    excess = len(embed) - EMBED_TOTAL_MAX
    if excess > 0 and embed.description:
        embed.description = clip(embed.description, max(len(embed.description) - excess, 1))
    return embed


def _footer_text(reply: Reply) -> str:
    bits = []
    if reply.more:
        bits.append(f"+{reply.more} more")
    if reply.footer.strip():
        bits.append(neutralise(reply.footer.strip()))
    return clip(" · ".join(bits), FOOTER_MAX)


def _header(reply: Reply) -> str:
    title = " ".join(reply.title.split())
    lines = [f"**{neutralise(title)}**"] if title else []
    if reply.text.strip():
        lines.append(neutralise(reply.text.strip()))
    return clip("\n".join(lines), CONTENT_MAX)


def render(reply: Reply) -> list[dict[str, Any]]:
    """A reply as Discord messages: keyword arguments for `send`/`send_message`/`followup.send`.

    Every message carries `allowed_mentions=none`. Papers become embeds (one each) packed into
    messages of at most 10 embeds and 6,000 embed characters; messages after the first are
    marked as continued. Papers are split across messages, never dropped.
    """
    if not reply.cards:
        embeds = _notice_embeds(reply)
        header = ""
    elif reply.kind is ReplyKind.PAPER:
        embeds = [paper_embed(card) for card in reply.cards]
        header = ""
    else:
        colour = COLOURS[reply.kind]
        embeds = [card_embed(card, n, colour) for n, card in enumerate(reply.cards, 1)]
        header = _header(reply)
    footer = _footer_text(reply)
    if footer:
        embeds[-1].set_footer(text=footer)
        _fit(embeds[-1])
    batches: list[list[discord.Embed]] = [[]]
    size = 0
    for embed in embeds:
        if len(batches[-1]) >= EMBEDS_PER_MESSAGE or size + len(embed) > EMBED_TOTAL_MAX:
            batches.append([])
            size = 0
        batches[-1].append(embed)
        size += len(embed)
    total = len(batches)
    messages: list[dict[str, Any]] = []
    for n, batch in enumerate(batches, 1):
        message: dict[str, Any] = {"embeds": batch, "allowed_mentions": no_mentions()}
        if n == 1 and header:
            message["content"] = header
        elif n > 1:
            title = clip(neutralise(" ".join(reply.title.split())), 200)
            marker = f"(continued, {n}/{total})"
            message["content"] = f"**{title}** {marker}" if title else marker
        messages.append(message)
    return messages
