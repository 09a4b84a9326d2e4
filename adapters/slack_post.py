"""Posting digests to Slack: `chat.postMessage` paced per channel (or to a user's DM, opened
with `conversations.open`), outcomes mapped to `DeliveryError` for the delivery ledger, and the
check of a post whose outcome was unknown (`reconcile`, from the channel's history)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_render import Message, render
from bot.messages import ChannelRef, Reply
from bot.ports import (
    ABSENT,
    FOUND,
    LATER,
    UNCONFIRMED,
    DeliveryError,
    Reconciled,
    retry_after,
)

logger = logging.getLogger("adapters.slack")

# Slack: about one message per second per channel (S-OUT-1).
POST_INTERVAL = 1.0
POST_TIMEOUT = 15
# Errors that mean the bot cannot post to that channel any more: stop, pause, tell people.
GONE_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
        "not_authed",
        "team_access_not_granted",
        "missing_scope",
    }
)
# A direct message (personal watches) to someone who cannot get one (wave2.md SD-2, SD-3): the
# app's Messages tab is off, the user left, is deactivated or hidden, is external, or is a bot.
# Gone too: their watches pause until they use `/papers watch(es)` again.
CANNOT_DM = frozenset(
    {
        "messages_tab_disabled",
        "user_not_found",
        "user_not_visible",
        "user_disabled",
        "invalid_user_combination",
        "cannot_dm_bot",
    }
)
# A continuation message hit by a 429 waits and tries again (a clear rejection is safe to
# resend), at most this often and this long.
CONTINUATION_RETRIES = 2
MAX_INLINE_WAIT = 30.0
# conversations.history for non-Marketplace apps: 1 request per minute, at most 15 messages
# (wave2.md SH-2). One check per workspace per interval; the rest wait for a later tick.
HISTORY_INTERVAL = 60.0
HISTORY_LIMIT = 15
HISTORY_SLACK = 120  # seconds before the claim the post may carry (clocks differ)
DIGEST_EVENT = "paperboy_digest"
FOLLOWUP_EVENT = "paperboy_followup"  # a reply in a digest post's thread (bot.followups)
# chat.postMessage errors that say a thread takes no reply (wave2.md ST-2): final, never retried.
THREAD_ERRORS = frozenset(
    {
        "cannot_reply_to_message",
        "restricted_action_thread_locked",
        "restricted_action_non_threadable_channel",
        "restricted_action_thread_only_channel",
        "thread_not_found",
        "message_not_found",
    }
)
RATE_LIMIT_WAIT = 1.0  # a 429 without a usable Retry-After

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]
TokenOf = Callable[[str], Awaitable[str]]  # team id -> bot token, or DeliveryError


# A direct message refused for what the app lacks, not the user: no `im:write` (an upgrade
# without reinstalling the app) or the Messages tab off (SD-3). Pausing every watcher of the
# workspace one by one would outlast the fix, so the DM waits and the operator is told.
APP_SETUP = frozenset({"missing_scope", "messages_tab_disabled"})
APP_SETUP_WAIT = 3600.0


def delivery_error(exc: BaseException, *, direct: bool = False) -> DeliveryError:
    """The ledger's view of a failed `chat.postMessage` (platforms.md S-OUT-1/2/7, R-3);
    `direct`: the post was a direct message (personal watches)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        code = str(data.get("error") or f"HTTP {status}")
        if status == 429:
            wait = retry_after(exc.response.headers, default=RATE_LIMIT_WAIT, minimum=1.0)
            return DeliveryError(f"rate limited ({code})", retry_after=wait)
        if status >= 500:
            return DeliveryError(f"Slack answered {status}: may have posted", ambiguous=True)
        if direct and code in APP_SETUP:
            logger.error(
                "Slack refused a direct message (%s): reinstall the app with the im:write scope "
                "and the Messages tab on (slack-manifest.yml); watches wait, none is paused",
                code,
            )
            return DeliveryError(f"the app cannot send DMs yet: {code}", retry_after=APP_SETUP_WAIT)
        if code in CANNOT_DM:
            return DeliveryError(f"Slack cannot message this user: {code}", gone=True)
        if code in GONE_ERRORS:
            return DeliveryError(f"cannot post to this channel: {code}", gone=True)
        return DeliveryError(f"Slack refused the post: {code}")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        # No connection was made, so nothing was written: a plain retry is safe.
        return DeliveryError(f"could not reach Slack: {exc}")
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return DeliveryError(
            f"connection to Slack failed after sending ({type(exc).__name__}): may have posted",
            ambiguous=True,
        )
    return DeliveryError(f"unexpected failure posting to Slack: {exc!r}", ambiguous=True)


def found_in_history(
    response: Mapping[str, Any],
    channel: ChannelRef,
    idempotency_key: str,
    event: str = DIGEST_EVENT,
) -> Reconciled:
    """What one page of `conversations.history` (or `.replies`) says about the post carrying
    the key."""
    messages = response.get("messages") or []
    for message in messages:
        meta = message.get("metadata") or {}
        payload = meta.get("event_payload") or {}
        if meta.get("event_type") == event and payload.get("idempotency_key") == idempotency_key:
            return Reconciled(FOUND, ref=f"{channel.channel}:{message['ts']}")
    if response.get("has_more"):
        return Reconciled(
            UNCONFIRMED,
            note=f"not among the newest {len(messages)} messages since the post, and "
            "Slack lets this app read no further back",
        )
    return Reconciled(ABSENT, note=f"{len(messages)} messages since the post, none of ours")


def _thread_refusal(exc: DeliveryError) -> DeliveryError:
    """A refused reply: final when the thread takes no reply (ST-2), else as it was."""
    cause = exc.__cause__
    data = getattr(getattr(cause, "response", None), "data", None)
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    if code in THREAD_ERRORS:
        return DeliveryError(f"Slack refused the reply: {code}", final=True)
    return exc


def history_failure(exc: SlackApiError) -> Reconciled:
    data = getattr(exc.response, "data", None)
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    status = int(getattr(exc.response, "status_code", 0) or 0)
    if status == 429 or status >= 500:
        return Reconciled(LATER, note=f"Slack answered {status}")
    # missing_scope (an install from before the *:history scopes), not_in_channel...
    return Reconciled(UNCONFIRMED, note=f"cannot read the channel's history: {code}")


class SlackPoster:
    """Posts and history checks, one Web API client per bot token."""

    def __init__(
        self, api_base_url: str, token_of: TokenOf, *, sleep: Sleep, monotonic: Monotonic
    ) -> None:
        self.api_base_url = api_base_url
        self._token_of = token_of
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_post: dict[str, float] = {}
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._clients: dict[str, AsyncWebClient] = {}
        self._history_at: dict[str, float] = {}  # team -> monotonic time of the last check
        self._dms: dict[tuple[str, str], str] = {}  # (team, user) -> the DM's D… id
        self._dm_ids: set[str] = set()

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            if client.session is not None and not client.session.closed:
                await client.session.close()

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        """Post `reply` to a channel; returns "channel:ts" of the first message.

        Raises only `DeliveryError`. The post is never retried here when its outcome is
        unknown (the client has no retry handlers): the ledger decides (platforms.md R-3).
        Continuation messages go into the thread of the first.
        """
        client = await self._client_of(channel.workspace)
        target = await self._target(client, channel)
        messages = render(reply, actions=False)
        if reply.thread_of is not None:
            return await self._reply_in_thread(
                client, channel, reply.thread_of, messages, idempotency_key
            )
        metadata = {
            "event_type": DIGEST_EVENT,
            "event_payload": {"idempotency_key": idempotency_key, "channel": channel.key},
        }
        async with self._channel_lock(target.key):
            first = await self._post(client, target, messages[0], metadata=metadata)
            for n, message in enumerate(messages[1:], 2):
                await self._post_continuation(client, target, message, first, metadata, n)
        return f"{target.channel}:{first}"

    async def _target(self, client: AsyncWebClient, channel: ChannelRef) -> ChannelRef:
        """Where a post goes: the channel itself, or for `slack:T:@U` the user's DM with the
        app, opened with `conversations.open` once per user and process (wave2.md SD-1; it
        needs `im:write`). Opening posts nothing, so its failures are never ambiguous."""
        if not channel.is_direct:
            return channel
        known = self._dms.get((channel.workspace, channel.user_id))
        if known is None:
            try:
                response = await client.conversations_open(users=channel.user_id)
                known = str((response.get("channel") or {}).get("id") or "")
            except Exception as exc:
                failure = delivery_error(exc, direct=True)
                if failure.gone:
                    logger.warning("cannot open a DM for %s: %s", channel.key, failure)
                elif failure.ambiguous:
                    failure = DeliveryError(f"could not open the DM: {failure}")
                raise failure from exc
            if not known:
                raise DeliveryError("Slack opened the DM without a channel id")
            self._dms[(channel.workspace, channel.user_id)] = known
            self._dm_ids.add(known)
        return ChannelRef(channel.platform, channel.workspace, known)

    async def _reply_in_thread(
        self,
        client: AsyncWebClient,
        channel: ChannelRef,
        parent: str,
        messages: list[Message],
        idempotency_key: str,
    ) -> str:
        """A reply in the thread of `parent` ("C123:ts"); returns "channel:ts" of the reply.

        Slack posts a reply to a deleted parent as a top-level message without failing
        (wave2.md ST-3): the only sign is that the answer's `message` lacks `thread_ts`. Such
        an orphan is deleted at once and reported as `parent_gone`, so no more replies go to
        that post."""
        owner, _, thread_ts = parent.partition(":")
        if owner != channel.channel or not thread_ts:
            raise DeliveryError(f"{parent!r} is not a post in {channel.key}", final=True)
        metadata = {
            "event_type": FOLLOWUP_EVENT,
            "event_payload": {"idempotency_key": idempotency_key, "channel": channel.key},
        }
        first = ""
        async with self._channel_lock(channel.key):
            for message in messages:
                try:
                    ts, landed = await self._post_raw(
                        client, channel, message, metadata=metadata, thread_ts=thread_ts
                    )
                except DeliveryError as exc:
                    raise _thread_refusal(exc) from exc
                if landed.get("thread_ts") != thread_ts:
                    await self._remove_orphan(client, channel, ts)
                first = first or ts
        return f"{channel.channel}:{first}"

    async def _remove_orphan(self, client: AsyncWebClient, channel: ChannelRef, ts: str) -> None:
        note = "removed"
        try:
            await client.chat_delete(channel=channel.channel, ts=ts)
        except Exception as exc:  # noqa: BLE001 - reported in the ledger's error
            note = f"could not remove it: {exc}"
        logger.warning("reply to a deleted post in %s landed top-level (%s)", channel.key, note)
        raise DeliveryError(
            f"the post was deleted: the reply landed outside a thread ({note})", parent_gone=True
        )

    async def reconcile(
        self,
        channel: ChannelRef,
        idempotency_key: str,
        *,
        posted_at: datetime,
        thread_of: str | None = None,
    ) -> Reconciled:
        """Did the digest post carrying `idempotency_key` in its metadata land? Reads the
        channel's history since shortly before the post (wave2.md SH-1..SH-3); for a reply,
        the thread's replies (`conversations.replies`: history holds parents only, ST-4)."""
        team = channel.workspace
        last = self._history_at.get(team)
        if last is not None and self._monotonic() - last < HISTORY_INTERVAL:
            return Reconciled(LATER, note="one history check per minute per workspace")
        try:
            client = await self._client_of(team)
        except DeliveryError as exc:
            return Reconciled(LATER, note=str(exc))
        try:
            channel = await self._target(client, channel)  # a DM: its D… id (im:history)
        except DeliveryError as exc:
            return Reconciled(UNCONFIRMED if exc.gone else LATER, note=f"cannot open the DM: {exc}")
        self._history_at[team] = self._monotonic()
        oldest = posted_at.timestamp() - HISTORY_SLACK
        query: dict[str, Any] = {
            "channel": channel.channel,
            "oldest": f"{oldest:.6f}",
            "inclusive": True,
            "include_all_metadata": True,
            "limit": HISTORY_LIMIT,
        }
        try:
            if thread_of is not None:
                query["ts"] = thread_of.partition(":")[2]
                response = await client.conversations_replies(**query)
            else:
                response = await client.conversations_history(**query)
        except SlackApiError as exc:
            return history_failure(exc)
        except Exception as exc:
            return Reconciled(LATER, note=f"could not reach Slack: {exc!r}")
        event = DIGEST_EVENT if thread_of is None else FOLLOWUP_EVENT
        return found_in_history(
            response.data if isinstance(response.data, dict) else {},
            channel,
            idempotency_key,
            event,
        )

    async def _post_continuation(
        self,
        client: AsyncWebClient,
        channel: ChannelRef,
        message: Message,
        thread_ts: str,
        metadata: dict[str, Any],
        n: int,
    ) -> None:
        for attempt in range(CONTINUATION_RETRIES + 1):
            try:
                await self._post(client, channel, message, metadata=metadata, thread_ts=thread_ts)
                return
            except DeliveryError as exc:
                wait = exc.retry_after
                if wait is not None and wait <= MAX_INLINE_WAIT and attempt < CONTINUATION_RETRIES:
                    await self._sleep(wait)
                    continue
                # The first message is out: resending the whole digest would repeat it, so
                # the outcome is "partly posted", for the reconciler and an operator.
                raise DeliveryError(
                    f"digest partly posted: part {n} failed ({exc})", ambiguous=True
                ) from exc

    async def _post(
        self,
        client: AsyncWebClient,
        channel: ChannelRef,
        message: Message,
        *,
        metadata: dict[str, Any],
        thread_ts: str | None = None,
    ) -> str:
        ts, _ = await self._post_raw(
            client, channel, message, metadata=metadata, thread_ts=thread_ts
        )
        return ts

    async def _post_raw(
        self,
        client: AsyncWebClient,
        channel: ChannelRef,
        message: Message,
        *,
        metadata: dict[str, Any],
        thread_ts: str | None = None,
    ) -> tuple[str, Mapping[str, Any]]:
        """chat.postMessage: the new message's ts and the `message` Slack echoed."""
        await self._pace(channel.key)
        try:
            response = await client.chat_postMessage(
                channel=channel.channel,
                text=message["text"],
                blocks=message["blocks"],
                metadata=metadata,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            failure = delivery_error(exc, direct=channel.channel in self._dm_ids)
            if failure.gone:
                logger.warning("cannot post to %s: %s", channel.key, failure)
            raise failure from exc
        finally:
            self._last_post[channel.key] = self._monotonic()
        ts = response.get("ts")
        if not ts:
            raise DeliveryError("Slack accepted the post without a ts", ambiguous=True)
        landed = response.get("message")
        return str(ts), landed if isinstance(landed, Mapping) else {}

    async def _pace(self, key: str) -> None:
        last = self._last_post.get(key)
        if last is None:
            return
        wait = last + POST_INTERVAL - self._monotonic()
        if wait > 0:
            await self._sleep(wait)

    def _channel_lock(self, key: str) -> asyncio.Lock:
        lock = self._channel_locks.get(key)
        if lock is None:
            lock = self._channel_locks[key] = asyncio.Lock()
        return lock

    async def _client_of(self, team: str) -> AsyncWebClient:
        try:
            token = await self._token_of(team)
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(f"could not look up the Slack installation: {exc}") from exc
        client = self._clients.get(token)
        if client is None:
            # No retry handlers: the SDK's default resends after a connection error, which
            # can post a digest twice (S-OUT-2).
            client = AsyncWebClient(
                token=token, base_url=self.api_base_url, timeout=POST_TIMEOUT, retry_handlers=[]
            )
            self._clients[token] = client
        return client
