"""Discord: the "More like this" button under every paper card, and which cards each message
of a reply shows (buttons go on the message that shows their card).

Two kinds of button, because discord.py keeps them differently:
- on a message that carries only these buttons (digests posted through REST, a paper in
  detail, a long answer's earlier messages): a `DynamicItem` whose custom_id is
  `paperboy:like:<arXiv id>`. Registered once on the client, it answers clicks on any such
  message, old ones and after a restart included, and its view (no timeout) is never stored
  per message, so posting digests keeps no memory;
- on an answer's last message, beside Share and Subscribe (a view that times out): plain
  buttons with their own callbacks. A dynamic item there would be dropped from the client's
  registry when that view times out (discord.py's `ViewStore.remove_view` pops the
  templates of a removed view), silencing every digest's buttons.

The id in a custom_id comes back from Discord and is checked (`bot.ports.paper_id`) before it
becomes `/papers like <id>`; anything else gets a one-line answer.
Limits (platforms.md): 5 rows of 5 buttons a message, custom_id <= 100, label <= 80. A message
shows at most 10 cards (`discord_render`): 2 rows of card buttons, and Share/Subscribe on one.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.messages import PaperCard, Reply
from bot.ports import paper_id

LIKE_ID = "paperboy:like:"
LIKE_TEMPLATE = re.compile(re.escape(LIKE_ID) + r"(?P<id>.{0,80})", re.S)
PER_ROW = 5
Answer = Callable[[Any, str | None], Awaitable[None]]  # (interaction, checked id or None)
Numbered = tuple[int, PaperCard]  # the card's number in the reply (1-based) and the card


def card_groups(reply: Reply, messages: Sequence[dict[str, Any]]) -> list[list[Numbered]]:
    """The cards each rendered message shows: every card is one embed, in order."""
    if not reply.cards:
        return [[] for _ in messages]
    cards = list(enumerate(reply.cards, 1))
    groups = []
    for message in messages:
        count = len(message.get("embeds") or ())
        groups.append(cards[:count])
        cards = cards[count:]
    return groups


def like_label(reply: Reply, number: int) -> str:
    return "More like this" if len(reply.cards) == 1 else f"More like {number}"


def like_button_type(answer: Answer) -> Any:
    """The persistent "More like this" button class of one adapter (register it on the client
    with `add_dynamic_items`; `cls(id, label, row)` makes one); a click calls
    `answer(interaction, id)`."""

    class LikeButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=LIKE_TEMPLATE):
        def __init__(self, paper: str | None, label: str = "More like this", row: int = 0):
            super().__init__(
                discord.ui.Button(
                    label=label,
                    style=discord.ButtonStyle.secondary,
                    custom_id=LIKE_ID + (paper or "-"),
                    row=row,
                )
            )
            self.paper = paper

        @classmethod
        async def from_custom_id(
            cls, _interaction: Any, _item: Any, match: re.Match[str]
        ) -> LikeButton:
            return cls(paper_id(match["id"]))

        async def callback(self, interaction: Any) -> None:
            await answer(interaction, self.paper)

    return LikeButton


def views_for(
    button: Callable[..., discord.ui.Item[Any]],
    reply: Reply,
    messages: Sequence[dict[str, Any]],
    results: Callable[[Sequence[Numbered]], discord.ui.View] | None,
) -> list[discord.ui.View | None]:
    """The buttons of each message: "More like this" under its cards (`button`, persistent),
    and on the last message `results(its cards)` instead when given (Share, Subscribe)."""
    groups = card_groups(reply, messages)
    views: list[discord.ui.View | None] = []
    for group in groups:
        view = discord.ui.View(timeout=None) if group else None
        for k, (number, card) in enumerate(group):
            assert view is not None
            view.add_item(button(card.id, like_label(reply, number), row=k // PER_ROW))
        views.append(view)
    if results is not None and groups:
        views[-1] = results(groups[-1])
    return views


def add_plain_likes(
    view: discord.ui.View, reply: Reply, group: Sequence[Numbered], answer: Answer, first_row: int
) -> None:
    """The cards' "More like this" buttons on a view that times out (see the module doc)."""
    for k, (number, card) in enumerate(group):
        like: discord.ui.Button[Any] = discord.ui.Button(
            label=like_label(reply, number),
            style=discord.ButtonStyle.secondary,
            row=first_row + k // PER_ROW,
        )
        like.callback = _calls(answer, card.id)  # type: ignore[method-assign,assignment]
        view.add_item(like)


def _calls(answer: Answer, key: str) -> Callable[[Any], Awaitable[None]]:
    async def clicked(interaction: Any) -> None:
        await answer(interaction, paper_id(key))

    return clicked
