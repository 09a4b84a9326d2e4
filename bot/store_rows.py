"""The store's rows about chats and sources: channels, their subscriptions and schedules, and
each source's fetch bookkeeping. Part of `bot.store.PaperStore` (the one writer), kept apart
from the papers and their change feed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, select, text, update
from sqlmodel import Session, col

from bot.aliases import normalize_topic
from bot.messages import is_direct_key
from bot.models import Channel, SourceState, Subscription
from bot.times import aware

logger = logging.getLogger(__name__)

_CHANNEL = Channel.__table__  # type: ignore[attr-defined]


class ScheduleMove(NamedTuple):
    """A due channel's schedule moving on: where its next window starts (None: unchanged)
    and its next slot."""

    channel_key: str
    last_digest_at: datetime | None
    next_digest_at: datetime | None


def advance_schedules(session: Session, moves: Sequence[ScheduleMove]) -> None:
    """Move due channels' schedules on, inside the caller's transaction (the ledger's: a slot
    is owned and its channel moved on at once). PostgreSQL: one statement over arrays."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "UPDATE channel SET"
                " last_digest_at = CASE WHEN u.s IS NULL THEN channel.last_digest_at"
                " ELSE u.s END, next_digest_at = u.n"
                " FROM unnest(CAST(:keys AS varchar[]), CAST(:slots AS timestamptz[]),"
                " CAST(:nexts AS timestamptz[])) AS u(k, s, n)"
                " WHERE channel.key = u.k"
            ),
            {
                "keys": [m.channel_key for m in moves],
                "slots": [aware(m.last_digest_at) for m in moves],
                "nexts": [aware(m.next_digest_at) for m in moves],
            },
        )
        return
    with_slot = [
        {
            "b_key": m.channel_key,
            "b_slot": aware(m.last_digest_at),
            "b_next": aware(m.next_digest_at),
        }
        for m in moves
        if m.last_digest_at
    ]
    only_next = [
        {"b_key": m.channel_key, "b_next": aware(m.next_digest_at)}
        for m in moves
        if not m.last_digest_at
    ]
    where = _CHANNEL.c.key == bindparam("b_key")
    if with_slot:
        session.execute(
            update(_CHANNEL)
            .where(where)
            .values(last_digest_at=bindparam("b_slot"), next_digest_at=bindparam("b_next")),
            with_slot,
        )
    if only_next:
        session.execute(
            update(_CHANNEL).where(where).values(next_digest_at=bindparam("b_next")), only_next
        )


class ChatRows:
    """Channels, subscriptions and source states (mixed into `PaperStore`)."""

    engine: Engine
    _writer: Engine

    def channel(self, key: str) -> Channel | None:
        with Session(self.engine) as session:
            return session.get(Channel, key)

    def ensure_channel(self, key: str, now: datetime, **defaults: Any) -> tuple[Channel, bool]:
        """The channel's settings row, created with `defaults` if it did not exist."""
        with Session(self._writer) as session, session.begin():
            channel = session.get(Channel, key)
            created = channel is None
            if channel is None:
                channel = Channel(key=key, created_at=now, **defaults)
                session.add(channel)
            session.flush()
            session.expunge(channel)
        return channel, created

    def update_channel(self, key: str, **values: Any) -> None:
        with Session(self._writer) as session, session.begin():
            session.execute(update(Channel).where(col(Channel.key) == key).values(**values))

    def pause_unreachable(self, key: str, why: str, now: datetime) -> str:
        """The platform says the bot cannot post to `key` any more (removed from the channel,
        the channel deleted, a user who takes no DMs; `why`: its words): its digests and
        follow-ups pause, with the reason `/papers list` shows. A user's DM (personal watches)
        stays paused until their next `/papers watch(es)`. Returns the reason."""
        direct = is_direct_key(key)
        where = "cannot DM you" if direct else "the bot cannot post here"
        reason = f"{where} ({why}); since {now:%Y-%m-%d %H:%M} UTC"
        self.update_channel(key, paused_reason=reason)
        what = "watch DMs" if direct else "digests and follow-ups"
        logger.warning("%s to %s are PAUSED: %s", what, key, reason)
        return reason

    def pause_channels(self, key_prefix: str, reason: str) -> int:
        """Pause the digests of every channel whose key starts with `key_prefix` (a whole
        Slack workspace `slack:T123:` or Discord server `discord:<guild>:`); returns how many."""
        with Session(self._writer) as session, session.begin():
            result = session.execute(
                update(Channel)
                .where(col(Channel.key).startswith(key_prefix, autoescape=True))
                .values(paused_reason=reason)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def channels(self) -> list[Channel]:
        with Session(self.engine) as session:
            return [_one(r) for r in session.execute(select(Channel)).all()]

    # --------------------------------------------------- subscriptions

    def subscriptions(self, channel_key: str) -> list[Subscription]:
        with Session(self.engine) as session:
            stmt = (
                select(Subscription)
                .where(col(Subscription.channel_key) == channel_key)
                .order_by(col(Subscription.id))
            )
            return [_one(r) for r in session.execute(stmt).all()]

    def subscribe(
        self, channel_key: str, query: str, now: datetime, user: str | None = None
    ) -> tuple[Subscription, bool]:
        """Add a topic; returns (subscription, created). The same topic twice is one."""
        normalized = normalize_topic(query)
        with Session(self._writer) as session, session.begin():
            found = session.execute(
                select(Subscription).where(
                    col(Subscription.channel_key) == channel_key,
                    col(Subscription.normalized) == normalized,
                )
            ).first()
            if found is not None:
                sub = _one(found)
                session.expunge(sub)
                return sub, False
            sub = Subscription(
                channel_key=channel_key,
                query=" ".join(query.split()),
                normalized=normalized,
                created_by=user,
                created_at=now,
            )
            session.add(sub)
            session.flush()
            session.expunge(sub)
            return sub, True

    def unsubscribe(self, channel_key: str, subscription_id: int) -> bool:
        with Session(self._writer) as session, session.begin():
            sub = session.get(Subscription, subscription_id)
            if sub is None or sub.channel_key != channel_key:
                return False
            session.delete(sub)
            return True

    # ------------------------------------------- source bookkeeping (bot.sources)

    def source_states(self) -> list[SourceState]:
        with Session(self.engine) as session:
            return [_one(r) for r in session.execute(select(SourceState)).all()]

    def source_state(self, name: str) -> SourceState | None:
        with Session(self.engine) as session:
            return session.get(SourceState, name)

    def _update_source(self, name: str, **changes: Any) -> None:
        with Session(self._writer) as session, session.begin():
            state = session.get(SourceState, name) or SourceState(source=name)
            for key, value in changes.items():
                setattr(state, key, value(state) if callable(value) else value)
            session.add(state)

    def record_source_success(
        self,
        name: str,
        now: datetime,
        added: int = 0,
        newest: datetime | None = None,
        skipped: Sequence[str] | None = None,
        skipped_count: int | None = None,
    ) -> None:
        """A fetch of `name` succeeded: failures reset, counts and newest paper kept.

        `skipped`: the records of this fetch the store refused ("id: why"); `None` leaves
        the last count as it was (an import's later chunks keep what an earlier one found).
        `skipped_count`: the total when `skipped` lists only the first few.
        """
        extra: dict[str, Any] = {}
        if skipped is not None:
            extra["items_skipped"] = len(skipped) if skipped_count is None else skipped_count
            extra["skipped_note"] = "; ".join(skipped[:5])[:1000] or None
        self._update_source(
            name,
            **extra,
            last_success_at=now,
            consecutive_failures=0,
            papers_added=lambda s: (s.papers_added or 0) + added,
            newest_paper_at=lambda s: max(
                (t for t in (aware(s.newest_paper_at), newest) if t is not None), default=None
            ),
        )

    def record_source_failure(self, name: str, now: datetime, error: str) -> None:
        """A fetch of `name` failed; the papers are untouched, the failure is counted."""
        self._update_source(
            name,
            last_error_at=now,
            last_error=error[:2000],
            consecutive_failures=lambda s: (s.consecutive_failures or 0) + 1,
        )

    def set_source_cursor(self, name: str, cursor: str | None) -> None:
        """Where a resumable job (a snapshot import) got to; None when it finished."""
        self._update_source(name, cursor=cursor)


def _one(row: Any) -> Any:
    """A row of `select(Model)` is a 1-tuple; return the model."""
    return row[0] if isinstance(row, tuple) or hasattr(row, "_fields") else row
