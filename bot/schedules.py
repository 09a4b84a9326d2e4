"""Digest schedules: parse what a user types, describe it, and compute the next slot.

A schedule is wall-clock time in an IANA zone. Slots are computed on local dates and then
resolved to UTC, so a DST change neither skips nor doubles a day: a time that does not exist
that day (spring forward) moves later by the length of the gap (02:30 becomes 03:30, as cron
and Python's own arithmetic do), and a time that exists twice (fall back) fires once, at its
first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

KINDS = ("daily", "weekdays", "weekly", "off")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {name: i for i, name in enumerate(DAYS)} | {
    full: i
    for i, full in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
EXAMPLE = "`schedule daily 09:00 Europe/Berlin`, `schedule weekly mon 08:30`, `schedule off`"


class ScheduleError(ValueError):
    """What the user typed is not a schedule; the message says what to type instead."""


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: str  # daily | weekdays | weekly | off
    at: time = time(9, 0)
    timezone: str = "UTC"
    weekday: int | None = None  # 0 = Monday, for weekly

    @property
    def stored_kind(self) -> str:
        return f"weekly:{DAYS[self.weekday or 0]}" if self.kind == "weekly" else self.kind

    @classmethod
    def from_stored(cls, kind: str, at: str, timezone: str) -> Schedule:
        weekday = None
        if kind.startswith("weekly:"):
            kind, day = kind.split(":", 1)
            weekday = _DAY_NAMES.get(day, 0)
        return cls(kind=kind, at=parse_time(at), timezone=timezone, weekday=weekday)

    def describe(self) -> str:
        if self.kind == "off":
            return "off (no digests)"
        when = {
            "daily": "every day",
            "weekdays": "Monday to Friday",
            "weekly": f"every {_full_day(self.weekday or 0)}",
        }[self.kind]
        return f"{when} at {self.at:%H:%M} {self.timezone}"

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after `after` (UTC), or None when off."""
        if self.kind == "off":
            return None
        zone = ZoneInfo(self.timezone)
        local_day = after.astimezone(zone).date()
        for offset in range(9):
            day = local_day + timedelta(days=offset)
            if not self._runs_on(day):
                continue
            slot = _resolve(day, self.at, zone)
            if slot > after:
                return slot
        raise AssertionError("a schedule that runs at least weekly always has a slot in 9 days")

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        """The last slot at or before `at_or_before` (UTC), or None when off."""
        if self.kind == "off":
            return None
        zone = ZoneInfo(self.timezone)
        local_day = at_or_before.astimezone(zone).date()
        for offset in range(9):
            day = local_day - timedelta(days=offset)
            if self._runs_on(day):
                slot = _resolve(day, self.at, zone)
                if slot <= at_or_before:
                    return slot
        raise AssertionError("a schedule that runs at least weekly always has a slot in 9 days")

    def _runs_on(self, day: date) -> bool:
        if self.kind == "daily":
            return True
        if self.kind == "weekdays":
            return day.weekday() < 5
        return day.weekday() == self.weekday


def _resolve(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Local wall-clock `day at` in UTC; a non-existent time moves forward to a real one."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0)
    # A wall time that does not exist round-trips to a different wall time.
    roundtrip = first.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != naive:
        # In the gap: of the two readings (pre- and post-transition offsets) the later instant
        # is the requested time shifted forward by the gap, on the same local day.
        later = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
        earlier = first.astimezone(UTC)
        return max(later, earlier)
    return first.astimezone(UTC)


def parse_time(text: str) -> time:
    try:
        hours, minutes = text.split(":")
        value = time(int(hours), int(minutes))
    except ValueError:
        raise ScheduleError(f"`{text}` is not a time of day: use HH:MM, like 09:00") from None
    if len(minutes) != 2:
        raise ScheduleError(f"`{text}` is not a time of day: use HH:MM, like 09:00")
    return value


MAX_ZONE_CHARS = 64  # the longest IANA name has 32 characters


def parse_zone(text: str) -> str:
    candidate = text.strip()
    if len(candidate) > MAX_ZONE_CHARS:
        raise ScheduleError(
            "That is not an IANA time zone. Use a name like Europe/Berlin, America/New_York or UTC."
        )
    try:
        ZoneInfo(candidate)
        return candidate
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    lowered = candidate.lower()
    for name in available_timezones():
        if name.lower() == lowered:
            return name
    raise ScheduleError(
        f"`{text}` is not an IANA time zone. Use a name like Europe/Berlin, America/New_York "
        "or UTC."
    )


def parse_schedule(text: str, current: Schedule) -> Schedule:
    """Parse `daily 09:00 Europe/Berlin`; a missing time or zone keeps the current one."""
    words = text.split()
    if not words:
        raise ScheduleError(f"Say when digests should come, for example {EXAMPLE}.")
    kind = words[0].lower()
    rest = words[1:]
    if kind not in KINDS:
        raise ScheduleError(f"`{words[0]}` is not a schedule. Try {EXAMPLE}.")
    if kind == "off":
        if rest:
            raise ScheduleError("`schedule off` takes nothing after it.")
        return Schedule("off", current.at, current.timezone, current.weekday)
    weekday = None
    if kind == "weekly":
        if not rest or rest[0].lower() not in _DAY_NAMES:
            raise ScheduleError(
                "Weekly digests need a day: `schedule weekly mon 09:00` (mon, tue, ... sun)."
            )
        weekday = _DAY_NAMES[rest[0].lower()]
        rest = rest[1:]
    at, zone = current.at, current.timezone
    if rest and ":" in rest[0] and "/" not in rest[0]:
        at = parse_time(rest[0])
        rest = rest[1:]
    if rest:
        zone = parse_zone(rest[0])
        rest = rest[1:]
    if rest:
        raise ScheduleError(f"Unexpected `{' '.join(rest)}`. Try {EXAMPLE}.")
    return Schedule(kind, at, zone, weekday)


def _full_day(weekday: int) -> str:
    return ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[weekday]
