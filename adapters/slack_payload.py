"""Slack payloads as the core's value types, and back: pure functions, no SDK.

- a slash-command payload -> `Invocation` (`to_invocation`);
- a button click -> the `/papers` text it stands for (`action_invocation`, `action_value`);
- a `Reply` -> who sees it (`response_type`), and the copy a "Share" posts (`shared_copy`);
- a `reaction_added`/`reaction_removed` event -> `ReactionEvent` (`reaction_event`).

Channel keys are `slack:<team_id>:<channel_id>`, so one workspace can never read or change
another's subscriptions, even for equal channel ids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bot.messages import ChannelRef, Invocation, ReactionEvent, Reply, UserRef

PLATFORM = "slack"


def to_invocation(body: Mapping[str, Any]) -> Invocation:
    """A slash-command payload (form fields as a mapping) as an `Invocation`.

    The workspace is the `team_id` (an Enterprise Grid org install still sends the workspace's
    team id here), so channel keys never mix workspaces.
    """
    team = body.get("team_id") or body.get("enterprise_id")
    channel = body.get("channel_id")
    user = body.get("user_id")
    if not team or not channel or not user:
        raise ValueError("slash command payload without team_id, channel_id or user_id")
    return Invocation(
        text=str(body.get("text") or ""),
        channel=ChannelRef(PLATFORM, str(team), str(channel)),
        user=UserRef(PLATFORM, str(user), body.get("user_name")),
    )


def action_invocation(body: Mapping[str, Any], text: str) -> Invocation:
    """A button click (block_actions payload) as the `/papers` text it stands for."""
    user = _part(body, "user")
    team = _part(body, "team").get("id") or user.get("team_id")
    channel = _part(body, "channel").get("id") or _part(body, "container").get("channel_id")
    if not team or not channel or not user.get("id"):
        raise ValueError("block action payload without team, channel or user")
    return Invocation(
        text=text,
        channel=ChannelRef(PLATFORM, str(team), str(channel)),
        user=UserRef(PLATFORM, str(user["id"]), user.get("username") or user.get("name")),
    )


def response_type(reply: Reply) -> str:
    # Search results, help and errors are for the asker; confirmations of channel changes
    # (subscribe, schedule) are for the channel (S-IN-5).
    return "ephemeral" if reply.ephemeral else "in_channel"


def shared_copy(reply: Reply, user_name: str | None) -> Reply:
    """The reply again, for the whole channel, saying who shared it (the name is escaped like
    any user text, so it cannot become a mention)."""
    footer = reply.footer
    if user_name:
        footer = " · ".join(p for p in (reply.footer, f"shared by {user_name}") if p)
    return Reply(
        kind=reply.kind,
        title=reply.title,
        text=reply.text,
        cards=reply.cards,
        more=reply.more,
        footer=footer,
        ephemeral=False,
        query=reply.query,
    )


def action_value(body: Mapping[str, Any]) -> str:
    """The clicked button's value; "" for a payload of another shape."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    return str(first.get("value") or "") if isinstance(first, Mapping) else ""


def _part(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """One object of a payload, or {} when it is missing or not an object."""
    value = body.get(key)
    return value if isinstance(value, Mapping) else {}


REACTIONS = {"reaction_added": True, "reaction_removed": False}


def reaction_event(body: object, bot_user: str | None = None) -> ReactionEvent | None:
    """A reaction event body (wave2.md SR-1) as a `ReactionEvent`: the message is "C123:ts",
    as digest posts are stored. None for anything but a reaction on a message (a file or a
    file comment, a payload missing a part, values that are not text), and for a message
    someone other than `bot_user` wrote (`item_user`, SR-7: a cheap pre-filter; absent on
    messages no user wrote, which are then left to the core)."""
    event = body.get("event") if isinstance(body, Mapping) else None
    if not isinstance(body, Mapping) or not isinstance(event, Mapping):
        return None
    author = event.get("item_user")
    if bot_user and isinstance(author, str) and author and author != bot_user:
        return None
    item = event.get("item")
    added = REACTIONS.get(str(event.get("type")))
    if added is None or not isinstance(item, Mapping) or item.get("type") != "message":
        return None
    team, channel, ts = body.get("team_id"), item.get("channel"), item.get("ts")
    user, emoji = event.get("user"), event.get("reaction")
    parts = (team, channel, ts, user, emoji)
    if not all(isinstance(part, str) and part for part in parts):
        return None
    event_id = body.get("event_id")
    return ReactionEvent(
        channel=ChannelRef(PLATFORM, str(team), str(channel)),
        message_ref=f"{channel}:{ts}",
        user_id=str(user),
        emoji=str(emoji),
        added=added,
        event_id=event_id if isinstance(event_id, str) and event_id else None,
        event_at=_seconds(event.get("event_ts")),
    )


def _seconds(value: object) -> float | None:
    """Slack's "1712345678.000200" as seconds; None when it is not a finite number."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None
