"""Reactions on the bot's posts, stored per channel: record one, read a channel's taste, say
what it learned, forget it. The rules are in `bot.taste`; the rows in `bot.models.Reaction`.

A reaction counts when it is on a post the ledger knows in that channel (a digest post: its
`Delivery.message_ref`, Slack "C123:1712.0001", Discord a message id or several, comma
separated, for a long digest); on anything else it is ignored without a word. Redelivered events
count once: by the platform's event id for an hour (wave2.md SX-1, SX-4), and by the natural
key (channel, post, person, 👍 or 👎) for good: a second copy of an add changes nothing, and an
event older than the last one applied to that key is ignored (SX-5: Slack may resend one event
with a new event id minutes later, after the person removed it).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.db import chunks
from bot.messages import ReactionEvent
from bot.models import Delivery, Reaction, ReactionSeen
from bot.taste import Taste, reaction_sign

logger = logging.getLogger(__name__)

SEEN_FOR = timedelta(hours=1)  # event ids are remembered this long (Slack retries ~5 min)
MAX_REACTIONS = 200  # a channel's taste is read from its most recent reactions
MAX_PAPERS = 50  # and from the heaviest papers of each side among them
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,99}")  # Slack "C123:1712.0001", Discord ids
_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Outcome(StrEnum):
    RECORDED = "recorded"  # a new 👍/👎, or one removed
    DUPLICATE = "duplicate"  # a copy of an event already applied
    STALE = "stale"  # older than the last event applied to the same reaction
    NOT_OURS = "not ours"  # not a post the ledger knows in this channel
    IGNORED = "ignored"  # not a thumb, or a value no platform sends


def record(engine: Engine, event: ReactionEvent, now: datetime) -> Outcome:
    """Apply one reaction event; never raises for what a payload holds."""
    sign = reaction_sign(event.emoji)
    key = event.channel.key
    if sign is None or len(key) > 255 or not _valid(event):
        return Outcome.IGNORED
    with Session(engine) as session:
        post = _post(session, key, event.message_ref)
    if post is None:
        return Outcome.NOT_OURS
    ref, papers = post
    at = event.event_at if event.event_at is not None else now.timestamp()
    try:
        with Session(engine) as session:
            if event.event_id and not _first_time(session, event, now):
                return Outcome.DUPLICATE
            outcome = _apply(session, key, ref, event, sign, papers, at, now)
            session.commit()
    except IntegrityError:  # another instance applied the same reaction at the same moment
        return Outcome.DUPLICATE
    return outcome


def _valid(event: ReactionEvent) -> bool:
    return bool(_REF.fullmatch(event.message_ref or "") and _USER.fullmatch(event.user_id or ""))


def _post(session: Session, key: str, ref: str) -> tuple[str, list[str]] | None:
    """The post `ref` points at in this channel (a Discord digest of several messages is
    stored as "id1,id2"): its ledger reference and its papers; None if the ledger has none."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    stored = table.c.message_ref
    stmt = select(stored, table.c.paper_id).where(
        table.c.channel_key == key,
        or_(
            stored == ref,
            stored.like(f"{ref},%"),
            stored.like(f"%,{ref}"),
            stored.like(f"%,{ref},%"),
        ),
    )
    by_ref: dict[str, list[str]] = defaultdict(list)
    for message_ref, paper_id in session.execute(stmt.order_by(table.c.id)):
        if message_ref and ref in message_ref.split(","):
            by_ref[message_ref].append(paper_id)
    if not by_ref:
        return None
    first = next(iter(by_ref))
    return first, by_ref[first]


def _first_time(session: Session, event: ReactionEvent, now: datetime) -> bool:
    """Whether the platform's event id is new (kept for `SEEN_FOR`; older ones are pruned)."""
    seen_key = f"{event.channel.platform}:{event.event_id}"[:255]
    if session.get(ReactionSeen, seen_key) is not None:
        return False
    session.execute(delete(ReactionSeen).where(col(ReactionSeen.seen_at) < now - SEEN_FOR))
    session.add(ReactionSeen(key=seen_key, seen_at=now))
    return True


def _apply(
    session: Session,
    key: str,
    ref: str,
    event: ReactionEvent,
    sign: int,
    papers: list[str],
    at: float,
    now: datetime,
) -> Outcome:
    row = session.scalars(
        select(Reaction).where(
            col(Reaction.channel_key) == key,
            col(Reaction.message_ref) == ref,
            col(Reaction.user_id) == event.user_id,
            col(Reaction.sign) == sign,
        )
    ).first()
    if row is None:
        # A removal first (its add was lost, or came before we knew the post) leaves a
        # tombstone, so a late copy of that add does not count.
        session.add(
            Reaction(
                channel_key=key,
                message_ref=ref,
                user_id=event.user_id,
                sign=sign,
                paper_ids=papers,
                active=event.added,
                event_at=at,
                updated_at=now,
            )
        )
        return Outcome.RECORDED
    if at < row.event_at:
        return Outcome.STALE
    if row.active == event.added:
        # The same state again: a copy, or events out of order (add, add, then the removal
        # between them): the newest time wins, so that removal is stale when it comes.
        row.event_at = at
        session.add(row)
        return Outcome.DUPLICATE
    row.active, row.event_at, row.updated_at = event.added, at, now
    row.paper_ids = papers
    session.add(row)
    return Outcome.RECORDED


# ------------------------------------------------------------------------------ reading


def tastes(engine: Engine, channel_keys: Sequence[str]) -> dict[str, Taste]:
    """Each channel's taste (channels without a reaction are left out): one indexed query
    per 5,000 channels, so digests of channels nobody reacted in cost one empty lookup."""
    out: dict[str, Taste] = {}
    table = Reaction.__table__  # type: ignore[attr-defined]
    for chunk in chunks(list(dict.fromkeys(channel_keys)), 5_000):
        stmt = (
            select(table.c.channel_key, table.c.sign, table.c.paper_ids)
            .where(table.c.channel_key.in_(chunk), table.c.active.is_(True))
            .order_by(table.c.updated_at.desc(), table.c.id.desc())
        )
        counts: dict[str, int] = defaultdict(int)
        with Session(engine) as session:
            for key, sign, papers in session.execute(stmt):
                if counts[key] >= MAX_REACTIONS or not isinstance(papers, list):
                    continue
                counts[key] += 1
                out.setdefault(key, Taste()).add(sign, [str(p) for p in papers])
    return {key: taste.trimmed(MAX_PAPERS) for key, taste in out.items()}


@dataclass(slots=True)
class Learned:
    """What `/papers taste` says about a channel."""

    ups: int = 0
    downs: int = 0
    people: int = 0
    taste: Taste = field(default_factory=Taste)


def learned(engine: Engine, channel_key: str) -> Learned:
    out = Learned()
    table = Reaction.__table__  # type: ignore[attr-defined]
    stmt = select(table.c.user_id, table.c.sign, table.c.paper_ids).where(
        table.c.channel_key == channel_key, table.c.active.is_(True)
    )
    people = set()
    with Session(engine) as session:
        for user, sign, papers in session.execute(stmt):
            people.add(user)
            if sign > 0:
                out.ups += 1
            else:
                out.downs += 1
            out.taste.add(sign, [str(p) for p in papers] if isinstance(papers, list) else [])
    out.people = len(people)
    return out


def forget(engine: Engine, channel_key: str) -> int:
    """Forget every reaction of a channel (`/papers taste reset`); returns how many 👍/👎."""
    with Session(engine) as session:
        active = session.execute(
            select(func.count()).where(
                col(Reaction.channel_key) == channel_key, col(Reaction.active).is_(True)
            )
        ).scalar_one()
        session.execute(delete(Reaction).where(col(Reaction.channel_key) == channel_key))
        session.commit()
    return int(active)
