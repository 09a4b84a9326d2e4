"""One check of Discord's message limits (platforms.md D-MSG-1), used by every Discord test."""

from __future__ import annotations

from typing import Any

import discord

LIMITS = {
    "content": 2000,
    "embeds": 10,
    "embed_total": 6000,
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "author": 256,
    "rows": 5,
    "per_row": 5,
    "label": 80,
    "custom_id": 100,
}


def assert_within_limits(message: dict[str, Any]) -> None:
    """A message (send kwargs) that Discord accepts, and that pings nobody."""
    mentions = message.get("allowed_mentions")
    assert isinstance(mentions, discord.AllowedMentions)
    assert dict(mentions.to_dict()) == {"parse": []}, "allowed_mentions must be none"
    content = message.get("content")
    embeds: list[discord.Embed] = message.get("embeds") or []
    assert (content and content.strip()) or embeds, "a message needs content or an embed"
    if content is not None:
        assert isinstance(content, str) and 0 < len(content.strip()) <= LIMITS["content"]
    assert len(embeds) <= LIMITS["embeds"]
    total = 0
    for embed in embeds:
        data = embed.to_dict()
        assert len(data.get("title", "")) <= LIMITS["title"]
        assert len(data.get("description", "")) <= LIMITS["description"]
        fields = data.get("fields", [])
        assert len(fields) <= LIMITS["fields"]
        for field in fields:
            # Discord trims whitespace before checking; a blank name or value is a 400.
            assert 1 <= len(field["name"].strip()) <= LIMITS["field_name"]
            assert 1 <= len(field["value"].strip()) <= LIMITS["field_value"]
        shown = data.get("title", "") + data.get("description", "")
        assert shown.strip() or fields, "an embed with nothing in it is a 400"
        if "title" in data:
            assert data["title"].strip(), "a blank title is a 400"
        assert len(data.get("footer", {}).get("text", "")) <= LIMITS["footer"]
        assert len(data.get("author", {}).get("name", "")) <= LIMITS["author"]
        # Discord counts title, description, field names and values, footer and author.
        counted = (
            len(data.get("title", ""))
            + len(data.get("description", ""))
            + sum(len(f["name"]) + len(f["value"]) for f in fields)
            + len(data.get("footer", {}).get("text", ""))
            + len(data.get("author", {}).get("name", ""))
        )
        assert counted == len(embed)
        total += counted
    assert total <= LIMITS["embed_total"]
    if message.get("view") is not None:
        assert_buttons_within_limits(message["view"])


def assert_buttons_within_limits(view: discord.ui.View) -> None:
    """At most 5 rows of at most 5 buttons, labels <= 80 and custom_ids <= 100 characters."""
    rows = view.to_components()
    assert 1 <= len(rows) <= LIMITS["rows"]
    for row in rows:
        assert 1 <= len(row["components"]) <= LIMITS["per_row"]
        for button in row["components"]:
            assert 1 <= len(button.get("label", "")) <= LIMITS["label"]
            assert 1 <= len(button["custom_id"]) <= LIMITS["custom_id"]


def message_text(message: dict[str, Any]) -> str:
    """Everything a user reads in a message, for assertions on what is shown."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        data = embed.to_dict()
        parts += [data.get("title", ""), data.get("url", ""), data.get("description", "")]
        parts += [f"{f['name']} {f['value']}" for f in data.get("fields", [])]
        parts.append(data.get("footer", {}).get("text", ""))
    return "\n".join(parts)
