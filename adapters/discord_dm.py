"""Discord direct messages (personal watches): the DM channel with a user, opened once per
process, and what a failure to open it means for the delivery ledger (wave2.md DD-1..DD-3)."""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.ports import DeliveryError, retry_after

# 50007 "Cannot send messages to this user" (DMs closed, the bot blocked: 403 on a post, 400
# from create_dm), 50278 no mutual server, 10013 unknown user: that user cannot be messaged,
# so their watches pause (DD-2). 40003: opening DMs too fast, a plain wait (DD-3).
CANNOT_DM = frozenset({50007, 50278, 10013})
DM_TOO_FAST = 40003
DM_TOO_FAST_WAIT = 600.0


def open_error(exc: BaseException) -> DeliveryError:
    """A failure to open a DM. Opening creates no message, so it is never ambiguous."""
    if isinstance(exc, discord.RateLimited):
        return DeliveryError("Discord rate limit opening a DM", retry_after=exc.retry_after)
    if not isinstance(exc, discord.HTTPException):
        return DeliveryError(f"could not open the DM ({exc!r})")
    if exc.code in CANNOT_DM or isinstance(exc, discord.Forbidden):
        return DeliveryError(
            f"Discord cannot message this user ({exc.code}: {exc.text})", gone=True
        )
    if exc.code == DM_TOO_FAST:
        return DeliveryError("Discord: opening DMs too fast", retry_after=DM_TOO_FAST_WAIT)
    if exc.status == 429:
        wait = retry_after(getattr(exc.response, "headers", None), default=5.0)
        return DeliveryError("Discord rate limit opening a DM", retry_after=wait)
    return DeliveryError(f"could not open the DM ({exc.status} {exc.code}: {exc.text})")


class DirectMessages:
    """user id -> the DM channel to post into, by id like any channel. `User.create_dm`
    returns the existing DM; it is asked once per user and process (DD-1, DD-3)."""

    def __init__(
        self,
        client: discord.Client,
        channel_getter: Callable[[int], discord.abc.Messageable],
    ) -> None:
        self.client = client
        self.channel_getter = channel_getter
        self._channels: dict[str, int] = {}

    async def channel(self, user_id: str) -> discord.abc.Messageable:
        """Raises only `DeliveryError` (`gone` when this user cannot be messaged)."""
        dm_id = self._channels.get(user_id)
        if dm_id is None:
            if not user_id.isdigit():
                raise DeliveryError(f"{user_id!r} is not a Discord user id", gone=True)
            uid = int(user_id)
            try:
                user = self.client.get_user(uid) or await self.client.fetch_user(uid)
                dm = await user.create_dm()
            except Exception as exc:
                raise open_error(exc) from exc
            dm_id = self._channels[user_id] = dm.id
        return self.channel_getter(dm_id)
