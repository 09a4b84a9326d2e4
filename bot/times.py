"""Time helpers shared by the store, the ledger, the digest and the commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload
from zoneinfo import ZoneInfo


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
@overload
def aware(value: datetime | None) -> datetime | None: ...
def aware(value: datetime | None) -> datetime | None:
    """The UTC instant of `value`: SQLite hands back naive datetimes, which are UTC here."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local_label(moment: datetime, zone: str) -> str:
    """`moment` as a reader in `zone` sees it: "Mon 08 Jun 09:00 CEST"."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M %Z")
