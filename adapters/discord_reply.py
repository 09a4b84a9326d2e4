"""A follow-up as a Discord reply to the digest message that carried the paper
(`Reply.thread_of`), and how its failures map to the ledger's vocabulary (wave2.md DT-1, DT-2,
DT-4). Kept beside adapters/discord.py, which posts digests and calls `reply_in_thread`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import discord

from adapters.discord_render import render
from bot.messages import Reply
from bot.ports import DeliveryError

# Discord's answer to a reply whose parent is gone: Invalid Form Body on the message reference
# (MESSAGE_REFERENCE_UNKNOWN_MESSAGE) or, seen once, Unknown Message (wave2.md DT-2).
INVALID_FORM_BODY = 50035
UNKNOWN_MESSAGE = 10008
# A thread that takes no message: locked (160005), archived and not writable (50083) (DT-4);
# a reply without Read Message History in the channel (160002): the bot may still post there.
THREAD_REFUSED = (160005, 50083, 160002)

Nonce = Callable[[str, int], str]
ErrorMap = Callable[..., DeliveryError]


def parent_is_gone(exc: discord.HTTPException) -> bool:
    """Unknown Message, or Invalid Form Body about the message reference: 50035 alone is any
    validation error (an embed too long), and the post it replies to is still there."""
    if exc.code == UNKNOWN_MESSAGE:
        return True
    return exc.code == INVALID_FORM_BODY and "message_reference" in (exc.text or "")


def reply_error(
    exc: BaseException, fallback: ErrorMap, *, posted: Sequence[str] = ()
) -> DeliveryError:
    """A failed reply: the parent deleted -> `parent_gone` (final, no top-level fallback); a
    thread that takes no message -> final; anything else as a digest post (`fallback`)."""
    if not posted and isinstance(exc, discord.HTTPException):
        if parent_is_gone(exc):
            return DeliveryError(
                f"the post this replies to is gone ({exc.status} {exc.code})", parent_gone=True
            )
        if exc.code in THREAD_REFUSED:
            return DeliveryError(f"Discord refused the reply ({exc.code})", final=True)
    return fallback(exc, posted=posted)


async def reply_in_thread(
    target: discord.abc.Messageable,
    channel_id: int,
    reply: Reply,
    idempotency_key: str,
    nonce: Nonce,
    fallback: ErrorMap,
) -> str:
    """A reply to the parent message (the first id of `reply.thread_of`) without mentioning
    its author (DT-1); returns the message id(s). `fail_if_not_exists=True`: with False,
    Discord posts a reply to a deleted message as a plain top-level message (DT-2), and a
    follow-up is never a top-level post, so a deleted parent fails and is `parent_gone`. A
    message that still came back without its reference is deleted at once."""
    parent = (reply.thread_of or "").split(",")[0].strip()
    if not parent.isdigit():
        raise DeliveryError(f"{reply.thread_of!r} is not a Discord message id", final=True)
    reference = discord.MessageReference(
        message_id=int(parent), channel_id=channel_id, fail_if_not_exists=True
    )
    posted: list[str] = []
    for part, message in enumerate(render(reply)):
        try:
            sent = await target.send(
                **message,
                reference=reference,
                mention_author=False,
                nonce=nonce(idempotency_key, part),
            )
        except Exception as exc:
            raise reply_error(exc, fallback, posted=posted) from exc
        posted.append(str(sent.id))
        if getattr(sent, "reference", None) is None:
            with contextlib.suppress(Exception):
                await sent.delete()
            raise DeliveryError("the reply landed outside a thread (removed)", parent_gone=True)
    return ",".join(posted)
