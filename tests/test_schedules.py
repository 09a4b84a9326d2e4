"""Digest slots across the 2025 and 2026 DST changes of America/New_York and Europe/Berlin.

Walking `Schedule.next_slot` day by day through each transition: no local day is skipped, none
gets two slots, and every slot is a time that exists on the wall clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.schedules import Schedule, ScheduleError, parse_schedule

# (zone, transition day): spring forward and fall back, 2025 and 2026.
TRANSITIONS = [
    ("America/New_York", date(2025, 3, 9)),
    ("America/New_York", date(2025, 11, 2)),
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/Berlin", date(2025, 3, 30)),
    ("Europe/Berlin", date(2025, 10, 26)),
    ("Europe/Berlin", date(2026, 3, 29)),
    ("Europe/Berlin", date(2026, 10, 25)),
]
# 02:30 falls in the spring gap of both zones; 01:30 (New York) and 02:30 (Berlin) exist twice
# on the fall-back day; 00:00 and 09:00 are ordinary.
TIMES = ["00:00", "01:30", "02:30", "03:00", "09:00", "23:59"]


def _exists(moment: datetime, zone: ZoneInfo) -> bool:
    """A wall-clock reading that round-trips (no gap time)."""
    local = moment.astimezone(zone)
    naive = local.replace(tzinfo=None)
    return naive.replace(tzinfo=zone).astimezone(UTC) == moment


def walk(schedule: Schedule, start: datetime, days: int) -> list[datetime]:
    slots: list[datetime] = []
    cursor = start
    end = start + timedelta(days=days)
    while True:
        nxt = schedule.next_slot(cursor)
        assert nxt is not None
        if nxt >= end:
            return slots
        slots.append(nxt)
        cursor = nxt


def first(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    slots: list[datetime] = []
    cursor = start
    while len(slots) < count:
        nxt = schedule.next_slot(cursor)
        assert nxt is not None
        slots.append(nxt)
        cursor = nxt
    return slots


@pytest.mark.parametrize("zone_name,day", TRANSITIONS)
@pytest.mark.parametrize("at", TIMES)
def test_daily_slots_across_dst_neither_skip_nor_double(zone_name: str, day: date, at: str) -> None:
    zone = ZoneInfo(zone_name)
    schedule = Schedule.from_stored("daily", at, zone_name)
    start = datetime.combine(day - timedelta(days=5), time(23, 59, 30), zone).astimezone(UTC)
    slots = first(schedule, start, 10)
    local_days = [s.astimezone(zone).date() for s in slots]
    # One slot per local day, every day, in order.
    assert local_days == [day - timedelta(days=4) + timedelta(days=i) for i in range(10)]
    wanted = time.fromisoformat(at)
    for slot in slots:
        assert slot.tzinfo is not None and slot.utcoffset() == timedelta(0)
        assert _exists(slot, zone), f"{slot} is not a real {zone_name} time"
        local = slot.astimezone(zone)
        if local.time() != wanted:
            # Only in a spring-forward gap: moved later on the same day, by at most the gap.
            assert local.date() == day
            latest = (datetime.combine(day, wanted) + timedelta(hours=1)).time()
            assert wanted < local.time() <= latest
    # A repeated (fall-back) time fires once, at its first occurrence.
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert all(timedelta(hours=22) <= g <= timedelta(hours=26) for g in gaps)


@pytest.mark.parametrize("zone_name,day", TRANSITIONS)
def test_previous_and_next_slot_agree_around_transitions(zone_name: str, day: date) -> None:
    zone = ZoneInfo(zone_name)
    for at in TIMES:
        schedule = Schedule.from_stored("daily", at, zone_name)
        moment = datetime.combine(day - timedelta(days=1), time(0), zone).astimezone(UTC)
        for _ in range(48 * 3):  # every 30 minutes through three days
            prev = schedule.previous_slot(moment)
            nxt = schedule.next_slot(moment)
            assert prev is not None and nxt is not None
            assert prev <= moment < nxt
            assert schedule.next_slot(prev) == nxt  # nothing between them
            assert schedule.previous_slot(nxt) == nxt
            moment += timedelta(minutes=30)


@pytest.mark.parametrize("zone_name,day", TRANSITIONS)
def test_weekdays_and_weekly_across_dst(zone_name: str, day: date) -> None:
    zone = ZoneInfo(zone_name)
    start = datetime.combine(day - timedelta(days=14), time(12), zone).astimezone(UTC)
    weekdays = walk(Schedule.from_stored("weekdays", "02:30", zone_name), start, 28)
    local = [s.astimezone(zone) for s in weekdays]
    assert len(local) == 20 and all(d.weekday() < 5 for d in local)
    assert len({d.date() for d in local}) == 20
    weekly = walk(Schedule.from_stored("weekly:sun", "02:30", zone_name), start, 28)
    assert [s.astimezone(zone).weekday() for s in weekly] == [6, 6, 6, 6]
    assert all(_exists(s, zone) for s in weekly)


def test_spring_gap_time_and_fall_fold_time_concretely() -> None:
    ny = Schedule.from_stored("daily", "02:30", "America/New_York")
    slot = ny.next_slot(datetime(2025, 3, 9, 0, 0, tzinfo=UTC))
    assert slot == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)  # 03:30 EDT: 02:30 does not exist
    berlin = Schedule.from_stored("daily", "02:30", "Europe/Berlin")
    slot = berlin.next_slot(datetime(2025, 10, 25, 12, 0, tzinfo=UTC))
    assert slot == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # the first 02:30 (CEST)
    after = berlin.next_slot(slot)
    assert after == datetime(2025, 10, 27, 1, 30, tzinfo=UTC)  # not the second 02:30 (CET)


def test_off_has_no_slot_and_bad_input_is_explained() -> None:
    off = Schedule.from_stored("off", "09:00", "UTC")
    assert off.next_slot(datetime(2026, 1, 1, tzinfo=UTC)) is None
    current = Schedule("daily")
    with pytest.raises(ScheduleError, match="IANA"):
        parse_schedule("daily 09:00 Mars/Olympus", current)
    with pytest.raises(ScheduleError, match="HH:MM"):
        parse_schedule("daily 25:00", current)
    weekly = parse_schedule("weekly mon 08:30 europe/berlin", current)
    assert weekly.stored_kind == "weekly:mon" and weekly.timezone == "Europe/Berlin"
