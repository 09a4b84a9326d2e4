"""The ledger's bulk statements, per database: open many runs and claim their papers.

SQLite: insert-if-absent in bulk (an executemany); the claims won are read back as the rows
carrying this call's fresh run ids. PostgreSQL: one statement per step over arrays
(`unnest`), one round trip for 100,000 claims, where an executemany would send one statement
per row.

Times: the columns are `timestamptz`, and every value is bound UTC-aware and cast to
`timestamptz[]`. A cast to `timestamp[]` drops the offset and reads the wall clock in the
session's TimeZone (PGTZ, a role's setting): in America/New_York a 05:30Z slot was stored as
another instant and an instance in UTC owned the same slot again. (bot.db also puts every
session in UTC, so values read back print as UTC.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, text, update
from sqlmodel import Session

from bot.db import chunks, insert_ignore
from bot.ledger_types import CLAIMED, Claim, RunRequest, digest_key
from bot.models import Channel, Delivery, DigestRun
from bot.times import aware

_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_RUN = DigestRun.__table__  # type: ignore[attr-defined]
_CHANNEL = Channel.__table__  # type: ignore[attr-defined]
_NOW = "CAST(:now AS timestamptz)"


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_runs(
    session: Session, runs: Sequence[RunRequest], now: datetime, instance_id: str
) -> dict[str, int]:
    """Insert-if-absent one DigestRun per request: channel -> run id, for the slots won."""
    if _postgres(session):
        got = session.execute(
            text(
                "INSERT INTO digest_run"
                " (channel_key, slot, status, instance_id, created_at, papers)"
                " SELECT u.k, u.s, 'building', :inst, " + _NOW + ", 0"
                " FROM unnest(CAST(:keys AS varchar[]), CAST(:slots AS timestamptz[]))"
                " AS u(k, s) ON CONFLICT DO NOTHING RETURNING id, channel_key"
            ),
            {
                "inst": instance_id,
                "now": aware(now),
                "keys": [r.channel_key for r in runs],
                "slots": [aware(r.slot) for r in runs],
            },
        )
        return {key: run_id for run_id, key in got}
    rows = [
        {
            "channel_key": r.channel_key,
            "slot": aware(r.slot),
            "status": "building",
            "instance_id": instance_id,
            "created_at": aware(now),
            "papers": 0,
        }
        for r in runs
    ]
    stmt = insert_ignore(session.get_bind(), _RUN).returning(_RUN.c.id, _RUN.c.channel_key)
    return {key: run_id for run_id, key in session.execute(stmt, rows)}


def claim_papers(
    session: Session, claims: list[Claim], runs: dict[str, int], now: datetime
) -> dict[str, set[str]]:
    """Insert-if-absent every claim: channel -> the papers whose claim this call won."""
    won: dict[str, set[str]] = defaultdict(set)
    if not claims:
        return won
    if _postgres(session):
        got = _claim_returning(session, claims, now)
    else:
        got = _claim_then_read(session, claims, runs, now)
    for key, pid in got:
        won[key].add(pid)
    return won


def _claim_returning(
    session: Session, claims: list[Claim], now: datetime
) -> Iterable[tuple[str, str]]:
    """PostgreSQL: one INSERT ... ON CONFLICT DO NOTHING RETURNING the rows it inserted."""
    got = session.execute(
        text(
            "INSERT INTO delivery"
            " (channel_key, paper_id, digest_run_id, status, attempts, claimed_at,"
            " idempotency_key)"
            " SELECT u.k, u.p, u.r, :claimed, 0, " + _NOW + ", :prefix || u.r"
            " FROM unnest(CAST(:keys AS varchar[]), CAST(:pids AS varchar[]),"
            " CAST(:runs AS integer[])) AS u(k, p, r)"
            " ON CONFLICT DO NOTHING RETURNING channel_key, paper_id"
        ),
        {
            "claimed": CLAIMED,
            "now": aware(now),
            "prefix": digest_key(0)[:-1],
            "keys": [c.channel_key for c in claims],
            "pids": [c.paper_id for c in claims],
            "runs": [c.run_id for c in claims],
        },
    )
    return [(key, pid) for key, pid in got]


def _claim_then_read(
    session: Session, claims: list[Claim], runs: dict[str, int], now: datetime
) -> Iterable[tuple[str, str]]:
    """SQLite: INSERT OR IGNORE, then read back the claims stamped with this tick's time."""
    session.execute(
        insert_ignore(session.get_bind(), _DELIVERY),
        [
            {
                "channel_key": c.channel_key,
                "paper_id": c.paper_id,
                "digest_run_id": c.run_id,
                "status": CLAIMED,
                "attempts": 0,
                "claimed_at": now,
                "idempotency_key": digest_key(c.run_id),
            }
            for c in claims
        ],
    )
    out: list[tuple[str, str]] = []
    for chunk in chunks(list(runs.values()), 1_000):
        mine = session.execute(
            _DELIVERY.select()
            .with_only_columns(_DELIVERY.c.channel_key, _DELIVERY.c.paper_id)
            .where(
                _DELIVERY.c.claimed_at == now,  # indexed: this tick's claims
                _DELIVERY.c.digest_run_id.in_(chunk),
            )
        )
        out.extend((key, pid) for key, pid in mine)
    return out


def update_papers(
    session: Session,
    channel_key: str,
    paper_ids: Sequence[str],
    conditions: Sequence[ColumnElement[bool]],
    values: dict[str, object],
) -> list[str]:
    """Set `values` on one channel's delivery rows of these papers where `conditions` still
    hold; returns the papers changed, in `paper_ids` order."""
    got = (
        session.execute(
            update(_DELIVERY)
            .where(
                _DELIVERY.c.channel_key == channel_key,
                _DELIVERY.c.paper_id.in_(list(paper_ids)),
                *conditions,
            )
            .values(**values)
            .returning(_DELIVERY.c.paper_id)
        )
        .scalars()
        .all()
    )
    changed = set(got)
    return [p for p in paper_ids if p in changed]


def take_due_rows(
    engine: Any,
    table: Any,
    status: str,
    now: datetime,
    *,
    platforms: Iterable[str] | None,
    limit: int,
    values: dict[str, Any],
    returning: Sequence[Any],
    where: Sequence[ColumnElement[bool]] = (),
) -> Sequence[Any]:
    """Take `table`'s rows in `status` whose `retry_at` has come, in unpaused channels (of
    `platforms` only, when given; `where`: more conditions), setting `values`, in one
    transaction: SKIP LOCKED on PostgreSQL and the status re-checked in the UPDATE, so two
    instances take disjoint sets. The delivery ledger's retries and unknown posts and the
    follow-up ledger's replies are taken this one way. Returns the `returning` columns."""
    stmt = (
        select(table.c.id)
        .join(_CHANNEL, _CHANNEL.c.key == table.c.channel_key)
        .where(
            table.c.status == status,
            table.c.retry_at.is_not(None),
            table.c.retry_at <= now,
            _CHANNEL.c.paused_reason.is_(None),
            *where,
        )
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=table)
    )
    if platforms is not None:
        stmt = stmt.where(
            or_(*(table.c.channel_key.startswith(f"{p}:") for p in platforms), false())
        )
    with Session(engine) as session, session.begin():
        ids = session.execute(stmt).scalars().all()
        if not ids:
            return []
        return session.execute(
            update(table)
            .where(table.c.id.in_(list(ids)), table.c.status == status)
            .values(**values)
            .returning(*returning)
        ).all()
