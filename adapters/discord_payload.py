"""Discord payloads as the core's value types, pure (no client, no network): where a message
is (`channel_ref`) and a raw reaction event (`reaction_of`, wave2.md DR-1..DR-4)."""

from __future__ import annotations

import time
from typing import Any

from bot.messages import ChannelRef, ReactionEvent

PLATFORM = "discord"
# Direct messages' workspace. Discord user ids are global, so a user's own things (personal
# watches, `discord:dm:@<user id>`) live here too, the same from every server.
DM_WORKSPACE = "dm"


def channel_ref(guild_id: int | None, channel_id: int | None) -> ChannelRef:
    """`discord:<guild>:<channel>`; direct messages use `dm` as the workspace."""
    return ChannelRef(PLATFORM, str(guild_id) if guild_id else DM_WORKSPACE, str(channel_id or 0))


def reaction_of(payload: Any, me: int | None, *, added: bool) -> ReactionEvent | None:
    """A raw reaction event as a `ReactionEvent`; None for the bot's own reactions (DR-4) and,
    for adds, reactions on messages another author wrote (`message_author_id`, DR-4). Custom
    emoji (with an id) are passed as "" (only the standard 👍/👎 count, DR-3)."""
    user_id = getattr(payload, "user_id", None)
    message_id = getattr(payload, "message_id", None)
    if not isinstance(user_id, int) or not isinstance(message_id, int):
        return None
    if me is not None and user_id == me:
        return None
    author = getattr(payload, "message_author_id", None)
    if added and me is not None and isinstance(author, int) and author != me:
        return None
    emoji = getattr(payload, "emoji", None)
    name = getattr(emoji, "name", None) if getattr(emoji, "id", None) is None else None
    guild_id, channel_id = getattr(payload, "guild_id", None), getattr(payload, "channel_id", None)
    return ReactionEvent(
        channel=channel_ref(
            guild_id if isinstance(guild_id, int) else None,
            channel_id if isinstance(channel_id, int) else None,
        ),
        message_ref=str(message_id),
        user_id=str(user_id),
        emoji=name if isinstance(name, str) else "",
        added=added,
        event_at=time.time(),  # Discord's raw events carry no time of their own
    )
