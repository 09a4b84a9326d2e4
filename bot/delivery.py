"""The delivery ledger: never the same paper twice in a channel, nothing silently lost.

DESIGN.md (Delivery) and platforms.md R-3, on SQLite and on PostgreSQL alike:

1. `DigestRun(channel, slot)` is inserted first (insert-if-absent). No row back means another
   instance, or an earlier run of this one, owns the slot: stop.
2. In the SAME transaction every paper is claimed in `Delivery(channel, paper)` with an
   insert-if-absent (`ON CONFLICT DO NOTHING RETURNING`), and the channel's schedule moves on.
   It commits before any network call; only papers whose claim came back go into the post.
3. Right before the post the claimed rows count an attempt (a committed compare-and-set on
   the claim's lease time, so a row taken over meanwhile is not posted by its old owner).
4. The post: success -> `sent` + message reference. `DeliveryError(retry_after=...)` or
   another clear rejection -> `failed` with `retry_at`; a later tick re-posts those papers
   honouring the wait. `DeliveryError(ambiguous=True)` (or anything unexpected) -> `unknown`,
   never re-posted blindly: `reconcile_unknown` asks the platform (Slack: the channel's
   history for the post's metadata; Discord: a resend with the same nonce inside its dedupe
   window), else the row stays `unknown` for an operator (`/papers status`, `/papers digest
   resend`). On an `unknown` row `retry_at` is when to check it; NULL once nobody can.
   `DeliveryError(gone=True)` -> `failed` for good, and the channel is paused
   (`Channel.paused_reason`, shown by `/papers list` and `/papers status`).
5. Recovery: a claim older than `STALE_AFTER` is an owner that died. If it had started its
   attempt the post may have been written: `unknown`. If not, nothing was sent: it is queued
   for a retry like a clear rejection.

Everything that decides who posts rests on the unique constraints, so every process may run
the tick (several instances share PostgreSQL; SQLite is one process per host).
A digest Reply larger than a platform allows is the adapter's job to split; the ledger works
per paper, and one digest is one `Outbox.send` with one idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, bindparam, false, func, or_, select, text, update
from sqlmodel import Session

from bot import digest
from bot.db import insert_ignore, writer
from bot.errors import DeliveryError
from bot.messages import ChannelRef, Reply
from bot.models import Channel, Delivery, DigestRun, SourceState, Subscription
from bot.ports import ABSENT, FOUND, LATER, RESEND, Outbox, Reconciled
from bot.store import PaperStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

STALE_AFTER = timedelta(minutes=10)  # no single post takes this long: the owner died
CHECK_LEASE = timedelta(minutes=5)  # an unknown post being checked by one instance
CHECK_AGAIN = timedelta(minutes=2)  # a check that could not run now (Slack's history: 1/min)
MAX_ATTEMPTS = 8  # then a rejected digest stays `failed` for an operator to look at
DEFAULT_RETRY = timedelta(minutes=5)  # a clear rejection without Retry-After
POST_CONCURRENCY = 8  # posts in flight per tick (adapters pace each channel themselves)

CLAIMED, SENT, FAILED, UNKNOWN = "claimed", "sent", "failed", "unknown"

_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_RUN = DigestRun.__table__  # type: ignore[attr-defined]
_CHANNEL = Channel.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Outgoing:
    """One post this instance owns: a digest (or its retry) and the papers claimed for it."""

    run_id: int | None
    channel_key: str
    reply: Reply | None  # None: built by `make_reply` right before the post
    paper_ids: list[str]
    idempotency_key: str
    lease: datetime  # the claimed_at of the claims, for the compare-and-set before posting
    retry: bool = False
    make_reply: Callable[[], Reply] | None = None


@dataclass(slots=True)
class DeliveryReport:
    digests: int = 0  # digest runs built by this instance
    messages: int = 0  # posts the platform accepted
    papers_sent: int = 0
    empty: int = 0  # runs with nothing new (quiet channels post nothing)
    skipped: int = 0  # slots another instance (or an earlier run) owns
    retried: int = 0  # posts of papers whose earlier post was rejected
    failed: int = 0  # papers left `failed` (retried later unless final)
    unknown: int = 0  # papers whose post may or may not have happened
    confirmed: int = 0  # unknown papers found posted after all
    reposted: int = 0  # unknown papers found missing, queued again (or resent)
    paused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.digests} digests, {self.messages} messages, {self.papers_sent} papers sent, "
            f"{self.empty} empty, {self.skipped} owned elsewhere, {self.retried} retries, "
            f"{self.failed} failed, {self.unknown} unknown"
            + (f", {self.confirmed} confirmed" if self.confirmed else "")
            + (f", {self.reposted} re-posted" if self.reposted else "")
            + (f", paused: {', '.join(self.paused)}" if self.paused else "")
        )


@dataclass(slots=True)
class UnknownPost:
    """One post whose outcome is unknown, as the ledger holds it (its papers' rows)."""

    channel_key: str
    run_id: int | None
    idempotency_key: str
    paper_ids: list[str]
    posted_at: datetime  # the claim's time: the post was made right after it
    attempts: int


@dataclass(slots=True)
class UnknownSummary:
    papers: int = 0
    posts: int = 0
    checking: int = 0  # papers still to be checked with the platform
    channels: list[str] = field(default_factory=list)

    def line(self, here: bool = False) -> str:
        """What `/papers status` and `/papers list` say (empty when nothing is unknown)."""
        if not self.papers:
            return ""
        where = "here" if here else f"in {len(self.channels)} channel(s)"
        s = "s" if self.papers != 1 else ""
        text = (f"{self.papers} paper{s} in {self.posts} digest post(s) {where} have an unknown "
                "outcome (the platform did not answer; the post may or may not be there).")
        if self.checking:
            text += f" {self.checking} are still being checked with the platform."
        if self.papers > self.checking:
            text += (" Look in the channel: if the digest is missing, `/papers digest resend` "
                     "there posts those papers again; if it is there, nothing to do.")
        return text


def digest_key(run_id: int) -> str:
    """The idempotency key of a digest post (Slack metadata, Discord nonce: <= 25 chars)."""
    return f"pb-digest-{run_id}"


class Ledger:
    """The Delivery and DigestRun tables. Every write is one short transaction."""

    def __init__(self, engine: Engine, instance_id: str | None = None) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self.instance_id = instance_id or uuid.uuid4().hex[:12]

    # --------------------------------------------------------------------- claims

    def claim(self, channel_key: str, paper_id: str, now: datetime) -> bool:
        """Claim one paper for one channel; True for exactly one caller, ever."""
        with Session(self._writer) as session, session.begin():
            got = session.execute(
                insert_ignore(self.engine, _DELIVERY).returning(_DELIVERY.c.id),
                [{"channel_key": channel_key, "paper_id": paper_id, "status": CLAIMED,
                  "attempts": 0, "claimed_at": now}],
            ).first()
        return got is not None

    def delivered(
        self, channel_keys: Sequence[str], since: datetime | None = None
    ) -> dict[str, set[str]]:
        """Papers already in the ledger (any status) per channel: never selected again.

        With `since` only claims made since then are read: a paper announced after `since`
        cannot have been claimed before it (and the unique constraint still refuses any
        older duplicate at claim time).
        """
        out: dict[str, set[str]] = defaultdict(set)
        wanted = set(channel_keys)
        if since is not None and len(wanted) > 1_000:
            # Many channels: every recent claim at once (indexed), filtered here.
            stmt = select(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id).where(
                _DELIVERY.c.claimed_at >= since
            )
            with Session(self.engine) as session:
                for key, pid in session.execute(stmt):
                    if key in wanted:
                        out[key].add(pid)
            return out
        for chunk in _chunks(sorted(wanted), 1_000):
            stmt = select(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id).where(
                _DELIVERY.c.channel_key.in_(chunk)
            )
            if since is not None:
                stmt = stmt.where(_DELIVERY.c.claimed_at >= since)
            with Session(self.engine) as session:
                for key, pid in session.execute(stmt):
                    out[key].add(pid)
        return out

    def open_runs(
        self,
        runs: Sequence[tuple[str, datetime, Sequence[str]]],
        now: datetime,
        *,
        advance: Iterable[tuple[str, datetime | None]] = (),
        scheduled: bool = True,
    ) -> dict[str, tuple[int, list[str]]]:
        """Steps 1-2 for many channels in ONE transaction.

        `runs`: (channel, slot, paper ids in rank order). Returns the runs this call owns:
        channel -> (run id, the papers whose claim it won, in rank order). `advance`:
        (channel, next slot) moved on in the same transaction; owned scheduled runs also
        set `last_digest_at` to their slot, where the next window starts.
        """
        owned: dict[str, tuple[int, list[str]]] = {}
        pg = self.engine.dialect.name == "postgresql"
        nexts = dict(advance)
        with Session(self._writer) as session, session.begin():
            if runs:
                got = (_pg_insert_runs if pg else self._insert_runs)(session, runs, now,
                                                                     self.instance_id)
                claims = [(key, pid, got[key]) for key, _slot, pids in runs if key in got
                          for pid in pids]
                won = (_pg_claim if pg else self._claim)(session, claims, got, now)
                for key, _slot, pids in runs:
                    if key in got:
                        owned[key] = (got[key], [p for p in pids if p in won[key]])
            moved = [(key, slot if scheduled and key in owned else None, nexts.pop(key))
                     for key, slot, _ in runs if key in nexts]
            moved += [(key, None, nxt) for key, nxt in nexts.items()]
            if moved:
                (_pg_advance if pg else self._advance)(session, moved)
        return owned

    def _insert_runs(
        self,
        session: Session,
        runs: Sequence[tuple[str, datetime, Sequence[str]]],
        now: datetime,
        instance_id: str,
    ) -> dict[str, int]:
        rows = [
            {"channel_key": key, "slot": _aware(slot), "status": "building",
             "instance_id": instance_id, "created_at": _aware(now), "papers": 0}
            for key, slot, _ in runs
        ]
        stmt = insert_ignore(self.engine, _RUN).returning(_RUN.c.id, _RUN.c.channel_key)
        return {key: run_id for run_id, key in session.execute(stmt, rows)}

    def _claim(
        self,
        session: Session,
        claims: list[tuple[str, str, int]],
        got: dict[str, int],
        now: datetime,
    ) -> dict[str, set[str]]:
        """Insert-if-absent in bulk (a plain executemany); the claims won are the rows that
        carry our fresh run ids."""
        won: dict[str, set[str]] = defaultdict(set)
        if claims:
            session.execute(
                insert_ignore(self.engine, _DELIVERY),
                [{"channel_key": key, "paper_id": pid, "digest_run_id": run_id,
                  "status": CLAIMED, "attempts": 0, "claimed_at": now,
                  "idempotency_key": digest_key(run_id)} for key, pid, run_id in claims],
            )
        for chunk in _chunks(list(got.values()), 1_000):
            mine = session.execute(
                select(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id).where(
                    _DELIVERY.c.claimed_at == now,  # indexed: this tick's claims
                    _DELIVERY.c.digest_run_id.in_(chunk),
                )
            )
            for key, pid in mine:
                won[key].add(pid)
        return won

    @staticmethod
    def _advance(
        session: Session, moved: list[tuple[str, datetime | None, datetime | None]]
    ) -> None:
        """Owned scheduled runs: the next window starts at their slot; every due channel's
        schedule moves on (slots owned elsewhere get the value their owner sets)."""
        with_slot = [{"b_key": k, "b_slot": _aware(s), "b_next": _aware(n)}
                     for k, s, n in moved if s]
        only_next = [{"b_key": k, "b_next": _aware(n)} for k, s, n in moved if not s]
        if with_slot:
            session.execute(
                update(_CHANNEL)
                .where(_CHANNEL.c.key == bindparam("b_key"))
                .values(last_digest_at=bindparam("b_slot"), next_digest_at=bindparam("b_next")),
                with_slot,
            )
        if only_next:
            session.execute(
                update(_CHANNEL)
                .where(_CHANNEL.c.key == bindparam("b_key"))
                .values(next_digest_at=bindparam("b_next")),
                only_next,
            )


    def begin_attempt(self, out: Outgoing) -> list[str]:
        """Step 3: count the attempt of the claims still ours (lease unchanged); committed
        before the post. Returns the papers that may be posted."""
        if not out.paper_ids:
            return []
        with Session(self._writer) as session, session.begin():
            got = session.execute(
                update(_DELIVERY)
                .where(
                    _DELIVERY.c.channel_key == out.channel_key,
                    _DELIVERY.c.paper_id.in_(out.paper_ids),
                    _DELIVERY.c.status == CLAIMED,
                    _DELIVERY.c.claimed_at == out.lease,
                    _DELIVERY.c.attempts == 0,
                )
                .values(attempts=_DELIVERY.c.attempts + 1)
                .returning(_DELIVERY.c.paper_id)
            ).scalars().all()
        mine = set(got)
        return [p for p in out.paper_ids if p in mine]

    def mark(
        self,
        channel_key: str,
        paper_ids: Sequence[str],
        status: str,
        now: datetime,
        *,
        message_ref: str | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Step 4: the outcome of a post for its papers."""
        if not paper_ids:
            return
        values: dict[str, object] = {"status": status, "retry_at": retry_at, "error": error}
        if status == SENT:
            values.update(message_ref=message_ref, sent_at=now, error=None)
        with Session(self._writer) as session, session.begin():
            session.execute(
                update(_DELIVERY)
                .where(
                    _DELIVERY.c.channel_key == channel_key,
                    _DELIVERY.c.paper_id.in_(list(paper_ids)),
                    # A post confirmed late still wins over a recovery's `unknown`.
                    _DELIVERY.c.status.in_([CLAIMED, UNKNOWN] if status == SENT else [CLAIMED]),
                )
                .values(**values)
            )

    def finish_run(self, run_id: int | None, status: str, papers: int, now: datetime) -> None:
        if run_id is None:
            return
        with Session(self._writer) as session, session.begin():
            session.execute(
                update(_RUN)
                .where(_RUN.c.id == run_id)
                .values(status=status, papers=papers, finished_at=now)
            )

    # ----------------------------------------------------------- retries, recovery

    def recover_stale(self, now: datetime) -> tuple[int, int]:
        """Step 5: claims whose owner died. Returns (now unknown, queued for retry)."""
        cutoff = now - STALE_AFTER
        stale = and_(_DELIVERY.c.status == CLAIMED, _DELIVERY.c.claimed_at < cutoff)
        with Session(self._writer) as session, session.begin():
            unknown = session.execute(
                update(_DELIVERY)
                .where(stale, _DELIVERY.c.attempts > 0)
                .values(
                    status=UNKNOWN,
                    error="the process stopped while posting: the post may exist; "
                    "not re-posted",
                    retry_at=now,  # checked with the platform by `reconcile_unknown`
                )
                .returning(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id)
            ).all()
            queued = session.execute(
                update(_DELIVERY)
                .where(stale, _DELIVERY.c.attempts == 0)
                .values(status=FAILED, retry_at=now, error="claimed, never posted")
                .returning(_DELIVERY.c.id)
            ).all()
        for key, pid in unknown:
            logger.warning("delivery of %s to %s is UNKNOWN (owner died mid-post)", pid, key)
        return len(unknown), len(queued)

    def _take_due(
        self,
        status: str,
        now: datetime,
        platforms: Iterable[str] | None,
        limit: int,
        values: dict[str, Any],
        *extra: Any,
    ) -> Sequence[Any]:
        """Take the rows in `status` whose `retry_at` has come, in unpaused channels (of
        `platforms` only, when given), setting `values`, in one transaction: SKIP LOCKED on
        PostgreSQL and the status re-checked in the UPDATE, so two instances take disjoint
        sets. Returns (id, channel_key, paper_id, digest_run_id, idempotency_key, *extra)."""
        stmt = (
            select(_DELIVERY.c.id)
            .join(_CHANNEL, _CHANNEL.c.key == _DELIVERY.c.channel_key)
            .where(
                _DELIVERY.c.status == status,
                _DELIVERY.c.retry_at.is_not(None),
                _DELIVERY.c.retry_at <= now,
                _CHANNEL.c.paused_reason.is_(None),
            )
            .order_by(_DELIVERY.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=_DELIVERY)
        )
        if platforms is not None:
            stmt = stmt.where(
                or_(*(_DELIVERY.c.channel_key.startswith(f"{p}:") for p in platforms), false())
            )
        with Session(self._writer) as session, session.begin():
            ids = session.execute(stmt).scalars().all()
            if not ids:
                return []
            return session.execute(
                update(_DELIVERY)
                .where(_DELIVERY.c.id.in_(list(ids)), _DELIVERY.c.status == status)
                .values(**values)
                .returning(
                    _DELIVERY.c.id,
                    _DELIVERY.c.channel_key,
                    _DELIVERY.c.paper_id,
                    _DELIVERY.c.digest_run_id,
                    _DELIVERY.c.idempotency_key,
                    *extra,
                )
            ).all()

    def take_retries(
        self, now: datetime, platforms: Iterable[str] | None = None, limit: int = 2_000
    ) -> list[Outgoing]:
        """Failed papers whose wait is over, taken atomically (SKIP LOCKED on PostgreSQL, a
        conditional UPDATE everywhere) and grouped back into their digests. `platforms`:
        only channels this instance can post to."""
        rows = self._take_due(
            FAILED,
            now,
            platforms,
            limit,
            {
                "status": CLAIMED,
                "claimed_at": now,
                "retry_at": None,
                "attempts": _DELIVERY.c.attempts + 1,
            },
        )
        groups: dict[tuple[str, int | None, str | None], list[tuple[int, str]]] = defaultdict(
            list
        )
        for row_id, key, pid, run_id, idem in rows:
            groups[(key, run_id, idem)].append((row_id, pid))
        return [
            Outgoing(
                run_id=run_id,
                channel_key=key,
                reply=None,  # built by `deliver_due` from the store
                paper_ids=[pid for _, pid in sorted(items)],
                idempotency_key=idem or f"pb-retry-{items[0][0]}",
                lease=now,
                retry=True,
            )
            for (key, run_id, idem), items in groups.items()
        ]

    # ------------------------------------------------------------- unknown outcomes

    def take_unknown(
        self, now: datetime, platforms: Iterable[str] | None = None, limit: int = 200
    ) -> list[UnknownPost]:
        """Unknown posts due for a check, taken for CHECK_LEASE (another instance does not
        check them meanwhile; if this one dies, they come due again)."""
        rows = self._take_due(
            UNKNOWN,
            now,
            platforms,
            limit,
            {"retry_at": now + CHECK_LEASE},
            _DELIVERY.c.claimed_at,
            _DELIVERY.c.attempts,
        )
        groups: dict[tuple[str, int | None, str], UnknownPost] = {}
        for row_id, key, pid, run_id, idem, claimed_at, attempts in sorted(rows):
            idem = idem or f"pb-retry-{row_id}"
            post = groups.get((key, run_id, idem))
            if post is None:
                post = groups[(key, run_id, idem)] = UnknownPost(
                    key, run_id, idem, [], _aware(claimed_at) or now, attempts or 0
                )
            post.paper_ids.append(pid)
            post.attempts = max(post.attempts, attempts or 0)
        return list(groups.values())

    def settle_unknown(
        self, post: UnknownPost, result: Reconciled, now: datetime
    ) -> list[str]:
        """Apply what the platform said about an unknown post; returns the papers changed
        (for RESEND: the papers now claimed again for the resend)."""
        values: dict[str, object]
        if result.state == FOUND:
            values = {"status": SENT, "message_ref": result.ref, "sent_at": now,
                      "error": None, "retry_at": None}
        elif result.state == ABSENT:
            values = {"status": FAILED, "retry_at": now,
                      "error": f"not found in the channel ({result.note}): posted again"}
        elif result.state == RESEND:
            values = {"status": CLAIMED, "claimed_at": now, "retry_at": None,
                      "attempts": _DELIVERY.c.attempts + 1}
        elif result.state == LATER:
            values = {"retry_at": now + CHECK_AGAIN}
        else:
            values = {"retry_at": None,
                      "error": f"outcome unknown, could not be checked: {result.note}"[:500]}
        with Session(self._writer) as session, session.begin():
            got = session.execute(
                update(_DELIVERY)
                .where(
                    _DELIVERY.c.channel_key == post.channel_key,
                    _DELIVERY.c.paper_id.in_(post.paper_ids),
                    _DELIVERY.c.status == UNKNOWN,
                )
                .values(**values)
                .returning(_DELIVERY.c.paper_id)
            ).scalars().all()
        if result.state == FOUND and got:
            self.finish_run(post.run_id, "done", len(got), now)
        changed = set(got)
        return [p for p in post.paper_ids if p in changed]

    def requeue_unknown(self, channel_key: str, now: datetime) -> int:
        """An operator's call (`/papers digest resend`): this channel's unknown papers are
        posted again on the next tick. Returns how many."""
        with Session(self._writer) as session, session.begin():
            got = session.execute(
                update(_DELIVERY)
                .where(_DELIVERY.c.channel_key == channel_key, _DELIVERY.c.status == UNKNOWN)
                .values(status=FAILED, retry_at=now,
                        error="outcome was unknown; posted again on an operator's request")
                .returning(_DELIVERY.c.id)
            ).all()
        return len(got)

    def unknown_summary(
        self, channel_key: str | None = None, *, prefix: str | None = None
    ) -> UnknownSummary:
        """Unknown deliveries (one channel, the channels whose key starts with `prefix` (a
        workspace), or all): papers, posts, still being checked."""
        stmt = select(
            _DELIVERY.c.channel_key,
            _DELIVERY.c.idempotency_key,
            _DELIVERY.c.retry_at.is_not(None),
            func.count(),
        ).where(_DELIVERY.c.status == UNKNOWN).group_by(
            _DELIVERY.c.channel_key, _DELIVERY.c.idempotency_key,
            _DELIVERY.c.retry_at.is_not(None),
        )
        if channel_key is not None:
            stmt = stmt.where(_DELIVERY.c.channel_key == channel_key)
        if prefix is not None:
            stmt = stmt.where(_DELIVERY.c.channel_key.startswith(prefix, autoescape=True))
        summary = UnknownSummary()
        posts: set[tuple[str, str | None]] = set()
        channels: set[str] = set()
        with Session(self.engine) as session:
            for key, idem, checking, n in session.execute(stmt).all():
                summary.papers += int(n)
                if checking:
                    summary.checking += int(n)
                posts.add((key, idem))
                channels.add(key)
        summary.posts, summary.channels = len(posts), sorted(channels)
        return summary

    # ------------------------------------------------------------------- reading

    def statuses(self, channel_key: str) -> dict[str, str]:
        """paper id -> status, for one channel (status pages and tests)."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(_DELIVERY.c.paper_id, _DELIVERY.c.status).where(
                    _DELIVERY.c.channel_key == channel_key
                )
            ).all()
        return {pid: status for pid, status in rows}

    def counts(self, channel_key: str | None = None) -> dict[str, int]:
        stmt = select(_DELIVERY.c.status, func.count()).group_by(_DELIVERY.c.status)
        if channel_key is not None:
            stmt = stmt.where(_DELIVERY.c.channel_key == channel_key)
        with Session(self.engine) as session:
            return {status: int(n) for status, n in session.execute(stmt).all()}


# PostgreSQL: one statement per step over arrays (`unnest`), one round trip for 100,000
# claims, where an executemany would send one statement per row.
#
# Times: the columns are `timestamptz`, and every value is bound UTC-aware and cast to
# `timestamptz[]`. A cast to `timestamp[]` (as before) drops the offset and reads the wall clock
# in the session's TimeZone (PGTZ, a role's setting): in America/New_York a 05:30Z slot was
# stored as another instant and an instance in UTC owned the same slot again. (bot.db also
# puts every session in UTC, so values read back print as UTC.)
_NOW = "CAST(:now AS timestamptz)"



def _pg_insert_runs(
    session: Session,
    runs: Sequence[tuple[str, datetime, Sequence[str]]],
    now: datetime,
    instance_id: str,
) -> dict[str, int]:
    rows = session.execute(
        text(
            "INSERT INTO digest_run (channel_key, slot, status, instance_id, created_at, papers)"
            " SELECT u.k, u.s, 'building', :inst, " + _NOW + ", 0"
            " FROM unnest(CAST(:keys AS varchar[]), CAST(:slots AS timestamptz[])) AS u(k, s)"
            " ON CONFLICT DO NOTHING RETURNING id, channel_key"
        ),
        {"inst": instance_id, "now": _aware(now), "keys": [r[0] for r in runs],
         "slots": [_aware(r[1]) for r in runs]},
    )
    return {key: run_id for run_id, key in rows}


def _pg_claim(
    session: Session,
    claims: list[tuple[str, str, int]],
    got: dict[str, int],
    now: datetime,
) -> dict[str, set[str]]:
    won: dict[str, set[str]] = defaultdict(set)
    if not claims:
        return won
    rows = session.execute(
        text(
            "INSERT INTO delivery"
            " (channel_key, paper_id, digest_run_id, status, attempts, claimed_at,"
            " idempotency_key)"
            " SELECT u.k, u.p, u.r, :claimed, 0, " + _NOW + ", :prefix || u.r"
            " FROM unnest(CAST(:keys AS varchar[]), CAST(:pids AS varchar[]),"
            " CAST(:runs AS integer[])) AS u(k, p, r)"
            " ON CONFLICT DO NOTHING RETURNING channel_key, paper_id"
        ),
        {"claimed": CLAIMED, "now": _aware(now), "prefix": digest_key(0)[:-1],
         "keys": [c[0] for c in claims], "pids": [c[1] for c in claims],
         "runs": [c[2] for c in claims]},
    )
    for key, pid in rows:
        won[key].add(pid)
    return won


def _pg_advance(
    session: Session, moved: list[tuple[str, datetime | None, datetime | None]]
) -> None:
    session.execute(
        text(
            "UPDATE channel SET"
            " last_digest_at = CASE WHEN u.s IS NULL THEN channel.last_digest_at ELSE u.s END,"
            " next_digest_at = u.n"
            " FROM unnest(CAST(:keys AS varchar[]), CAST(:slots AS timestamptz[]),"
            " CAST(:nexts AS timestamptz[])) AS u(k, s, n)"
            " WHERE channel.key = u.k"
        ),
        {"keys": [m[0] for m in moved], "slots": [_aware(m[1]) for m in moved],
         "nexts": [_aware(m[2]) for m in moved]},
    )


# ------------------------------------------------------------------------ the tick


def due_channels(store: PaperStore, now: datetime) -> list[digest.DueChannel]:
    """Channels whose slot has come, as plain rows (an ORM load of thousands is slow)."""
    fields = digest.DueChannel.FIELDS
    stmt = select(*(_CHANNEL.c[name] for name in fields)).where(
        _CHANNEL.c.schedule != "off",
        _CHANNEL.c.paused_reason.is_(None),
        _CHANNEL.c.next_digest_at.is_not(None),
        _CHANNEL.c.next_digest_at <= now,
    )
    with Session(store.engine) as session:
        rows = session.execute(stmt).all()
    return [digest.DueChannel(*row) for row in rows]


def topics_of(store: PaperStore, keys: Sequence[str]) -> dict[str, list[str]]:
    """channel -> its topics as typed, in the order they were added."""
    table = Subscription.__table__  # type: ignore[attr-defined]
    out: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(list(keys), 5_000):
        stmt = (
            select(table.c.channel_key, table.c.query)
            .where(table.c.channel_key.in_(chunk))
            .order_by(table.c.id)
        )
        with Session(store.engine) as session:
            for key, query in session.execute(stmt):
                out[key].append(query)
    return out


def open_due(
    store: PaperStore,
    ledger: Ledger,
    now: datetime,
    platforms: Iterable[str] | None = None,
) -> tuple[list[Outgoing], int]:
    """Select, rank and claim every due channel's digest (blocking; run it in a thread).

    `platforms`: only channels this instance can post to (an instance without the Discord
    adapter leaves Discord channels to one that has it). Returns the posts this instance owns
    and how many due slots another owner had.
    """
    channels = due_channels(store, now)
    if platforms is not None:
        allowed = set(platforms)
        channels = [c for c in channels if c.key.split(":", 1)[0] in allowed]
    if not channels:
        return [], 0
    subs = topics_of(store, [c.key for c in channels])
    plans: list[digest.Plan] = []
    slots: dict[str, datetime] = {}
    advance: list[tuple[str, datetime | None]] = []
    by_key = {c.key: c for c in channels}
    for channel in channels:
        slot = digest.due_slot(channel, now)
        advance.append((channel.key, digest.schedule_of(channel).next_slot(now)))
        if slot is None or not subs.get(channel.key):
            continue  # no topics: nothing to build, the schedule just moves on
        slots[channel.key] = slot
        plans.append(digest.plan_for(channel, subs[channel.key], slot))
    since = min((p.since for p in plans), default=now)
    delivered = ledger.delivered([p.channel_key for p in plans], since)
    selections = digest.select_many(store, plans, now, delivered)
    runs = [(p.channel_key, slots[p.channel_key], selections[p.channel_key].paper_ids)
            for p in plans]
    owned = ledger.open_runs(runs, now, advance=advance)
    states = store.source_states() if owned else []
    outgoing = []
    for plan in plans:
        if plan.channel_key not in owned:
            continue
        run_id, won = owned[plan.channel_key]
        selection = selections[plan.channel_key]
        channel = by_key[plan.channel_key]
        lost = len(selection.picks) - len(won)
        if lost:  # claimed meanwhile by a manual `digest post`: not posted twice
            keep = set(won)
            selection = replace(selection, picks=[p for p in selection.picks
                                                  if p.id in keep])
            if not won:
                ledger.finish_run(run_id, "done", 0, now)
                continue
        if not won and channel.quiet:  # nothing new, and the channel asked for silence
            ledger.finish_run(run_id, "empty", 0, now)
            continue
        outgoing.append(
            Outgoing(run_id, plan.channel_key, None, won, digest_key(run_id), now,
                     make_reply=partial(_reply_of, channel, selection, now, states,
                                        plan.topics, run_id))
        )
    return outgoing, len(plans) - len(owned)


def _reply_of(
    channel: digest.ChannelSettings,
    selection: digest.Selection,
    now: datetime,
    states: Sequence[SourceState],
    topics: Sequence[str],
    run_id: int,
) -> Reply:
    reply = digest.digest_reply(channel, selection, now, states, topics=topics, quiet=False)
    assert reply is not None
    return replace_meta(reply, run_id)


def open_now(
    store: PaperStore, ledger: Ledger, channel_key: str, now: datetime
) -> Outgoing | None:
    """`/papers digest post`: this channel's digest now, through the ledger, as its own run
    (slot = now). The schedule is left as it is: the next scheduled digest skips what this one
    delivered."""
    channel = store.channel(channel_key)
    subs = store.subscriptions(channel_key)
    if channel is None or not subs:
        return None
    slot = now
    plan = digest.plan_for(channel, [s.query for s in subs], digest.due_slot(channel, now) or now)
    delivered = ledger.delivered([channel_key])
    selection = digest.select_many(store, [plan], now, delivered)[channel_key]
    owned = ledger.open_runs([(channel_key, slot, selection.paper_ids)], now, scheduled=False)
    if channel_key not in owned:
        return None
    run_id, won = owned[channel_key]
    keep = set(won)
    selection = replace(selection, picks=[p for p in selection.picks if p.id in keep])
    reply = digest.digest_reply(
        channel, selection, now, store.source_states(), topics=plan.topics, quiet=False
    )
    assert reply is not None
    return Outgoing(run_id, channel_key, replace_meta(reply, run_id), won, digest_key(run_id), now)


def retry_reply(store: PaperStore, out: Outgoing, now: datetime) -> Reply:
    """The digest of papers whose earlier post was rejected, rebuilt from the store (their
    topics are matched again: the ledger keeps papers, not messages)."""
    channel = store.channel(out.channel_key)
    subs = store.subscriptions(out.channel_key)
    papers = store.get_many(out.paper_ids)
    topics = tuple(s.query for s in subs)
    since = min((digest.aware(p.announced_at) or now for p in papers), default=now)
    plan = digest.Plan(out.channel_key, topics, since, max_papers=len(papers) or 1)
    picked = digest.select_many(store, [plan], now, {})[out.channel_key]
    by_id = {p.id: p for p in picked.picks}
    picks = [by_id.get(p.id) or digest.Pick(p, (), 0.0) for p in papers]
    selection = digest.Selection(out.channel_key, since, picks, 0)
    assert channel is not None
    reply = digest.digest_reply(channel, selection, now, topics=topics, quiet=False)
    assert reply is not None
    return replace_meta(reply, out.run_id)


def replace_meta(reply: Reply, run_id: int | None) -> Reply:
    return replace(reply, meta={**reply.meta, "digest_run": str(run_id or "")})


async def deliver_due(
    store: PaperStore, ledger: Ledger, outbox: Outbox, now: datetime
) -> DeliveryReport:
    """One tick: recover dead owners' claims, re-post what waited long enough, then build,
    claim and post every due digest. Database work runs in a thread (the loop keeps
    answering commands)."""
    report = DeliveryReport()
    await asyncio.to_thread(ledger.recover_stale, now)
    platforms = sorted(outbox.adapters)
    await reconcile_unknown(store, ledger, outbox, now, report)
    retries = await asyncio.to_thread(ledger.take_retries, now, platforms)
    for out in retries:
        out.make_reply = partial(retry_reply, store, out, now)
    report.retried = len(retries)
    outgoing, report.skipped = await asyncio.to_thread(open_due, store, ledger, now, platforms)
    report.digests = len(outgoing)
    await post_all(store, ledger, outbox, [*retries, *outgoing], now, report)
    if report.digests or report.retried or report.skipped or report.confirmed or report.reposted:
        logger.info("digest tick: %s", report.summary())
    return report


async def reconcile_unknown(
    store: PaperStore, ledger: Ledger, outbox: Outbox, now: datetime, report: DeliveryReport
) -> None:
    """Ask the platform about posts whose outcome is unknown (platforms.md R-3): found ->
    `sent`; certainly missing -> queued again (this tick's retries post it); a platform that
    dedupes a resend (Discord's nonce) -> resent now with the same key; otherwise the row
    waits for an operator, and `/papers status` says so."""
    posts = await asyncio.to_thread(ledger.take_unknown, now, sorted(outbox.adapters))
    for post in posts:
        channel = ChannelRef.parse(post.channel_key)
        try:
            result = await outbox.reconcile(
                channel, post.idempotency_key, posted_at=post.posted_at, now=now,
                attempts=post.attempts,
            )
        except Exception as exc:  # an adapter bug must not stop the tick
            logger.exception("checking an unknown post to %s failed", post.channel_key)
            result = Reconciled(LATER, note=repr(exc))
        papers = await asyncio.to_thread(ledger.settle_unknown, post, result, now)
        logger.info("unknown post %s to %s: %s %s", post.idempotency_key, post.channel_key,
                    result.state, result.note)
        if result.state == FOUND:
            report.confirmed += len(papers)
        elif result.state == ABSENT:
            report.reposted += len(papers)
        elif result.state == RESEND and papers:
            out = Outgoing(post.run_id, post.channel_key, None, papers, post.idempotency_key,
                           now, retry=True)
            out.make_reply = partial(retry_reply, store, out, now)
            report.reposted += len(papers)
            await post_one(store, ledger, outbox, out, now, report)


async def post_all(
    store: PaperStore,
    ledger: Ledger,
    outbox: Outbox,
    outgoing: Sequence[Outgoing],
    now: datetime,
    report: DeliveryReport,
) -> None:
    gate = asyncio.Semaphore(POST_CONCURRENCY)

    async def one(out: Outgoing) -> None:
        async with gate:
            await post_one(store, ledger, outbox, out, now, report)

    await asyncio.gather(*(one(out) for out in outgoing))


async def post_one(
    store: PaperStore,
    ledger: Ledger,
    outbox: Outbox,
    out: Outgoing,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Steps 3-4 for one post."""
    if out.reply is None:
        assert out.make_reply is not None
        out.reply = await asyncio.to_thread(out.make_reply)
    papers = out.paper_ids
    if papers and not out.retry:
        papers = await asyncio.to_thread(ledger.begin_attempt, out)
        if not papers:
            return  # taken over meanwhile (we were presumed dead): the new owner posts
        if len(papers) < len(out.paper_ids):
            keep = set(papers)
            out.reply = replace(
                out.reply, cards=tuple(c for c in out.reply.cards if c.id in keep)
            )
    elif not papers:
        report.empty += 1
    try:
        ref = await outbox.send(
            ChannelRef.parse(out.channel_key), out.reply, idempotency_key=out.idempotency_key
        )
    except DeliveryError as exc:
        await asyncio.to_thread(_failed, store, ledger, out, papers, exc, now, report)
        return
    except Exception as exc:  # an adapter bug: we cannot know whether it posted
        logger.exception("posting to %s raised; marking its papers unknown", out.channel_key)
        await asyncio.to_thread(
            ledger.mark, out.channel_key, papers, UNKNOWN, now, error=f"adapter error: {exc!r}",
            retry_at=now,
        )
        report.unknown += len(papers)
        return
    await asyncio.to_thread(ledger.mark, out.channel_key, papers, SENT, now, message_ref=ref)
    await asyncio.to_thread(ledger.finish_run, out.run_id, "done" if papers else "empty",
                            len(papers), now)
    report.messages += 1
    report.papers_sent += len(papers)


def _failed(
    store: PaperStore,
    ledger: Ledger,
    out: Outgoing,
    papers: list[str],
    exc: DeliveryError,
    now: datetime,
    report: DeliveryReport,
) -> None:
    key = out.channel_key
    if exc.gone:
        reason = f"the bot cannot post here ({exc}); since {now:%Y-%m-%d %H:%M} UTC"
        store.update_channel(key, paused_reason=reason)
        ledger.mark(key, papers, FAILED, now, error=f"gone: {exc}")
        ledger.finish_run(out.run_id, "failed", 0, now)
        logger.warning("digests to %s are PAUSED: %s", key, reason)
        report.paused.append(key)
        report.failed += len(papers)
        return
    if exc.ambiguous:
        ledger.mark(key, papers, UNKNOWN, now, error=f"ambiguous: {exc}", retry_at=now)
        ledger.finish_run(out.run_id, "unknown", 0, now)
        logger.warning("post to %s is UNKNOWN (%s); its %d papers are not re-posted",
                       key, exc, len(papers))
        report.unknown += len(papers)
        return
    wait = (
        timedelta(seconds=exc.retry_after) if exc.retry_after is not None else DEFAULT_RETRY
    )
    attempts = _attempts(ledger, key, papers)
    final = attempts >= MAX_ATTEMPTS or exc.final
    ledger.mark(key, papers, FAILED, now, error=str(exc)[:500],
                retry_at=None if final else now + wait)
    if not papers:
        ledger.finish_run(out.run_id, "failed", 0, now)
    report.failed += len(papers)
    if final:
        logger.error("giving up on %d papers for %s after %d attempts: %s",
                     len(papers), key, attempts, exc)
    else:
        logger.info("post to %s rejected (%s); retrying after %s", key, exc, wait)


def _attempts(ledger: Ledger, key: str, papers: Sequence[str]) -> int:
    if not papers:
        return 0
    with Session(ledger.engine) as session:
        value = session.execute(
            select(func.max(_DELIVERY.c.attempts)).where(
                _DELIVERY.c.channel_key == key, _DELIVERY.c.paper_id.in_(list(papers))
            )
        ).scalar_one()
    return int(value or 0)


def _aware(value: datetime | None) -> datetime | None:
    """UTC-aware, for binding: a naive value here is UTC (SQLite hands back naive ones)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

