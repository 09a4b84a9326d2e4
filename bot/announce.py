"""When a paper was announced: the moment digests count it as new (DESIGN.md, Digests).

arXiv announces at 20:00 America/New_York, Sunday to Thursday; a submission belongs to the
first announcement after it whose cut-off (14:00 Eastern, Monday to Friday) it made, so a
paper is announced hours to three days after its v1 (Friday's batch on Sunday). Holidays are
ignored: the rule only has to give each paper exactly one moment, the same on every run and
every instance, so no paper falls between two digest windows.

Hugging Face Daily Papers counts on the day of its list, even weeks after arXiv.

A live refresh can only store a paper after its announcement (it polls). A paper that arrives
within `LIVE_LAG` of its announcement counts as announced when it reached the store, so a
digest built between the announcement and the fetch does not lose it; older dates are a
backfill and keep their own moment (months-old imports never reach a digest).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
CUTOFF = time(14, 0)
ANNOUNCE_AT = time(20, 0)
# Longer than any refresh interval or source outage we tolerate, plus arXiv's weekend.
LIVE_LAG = timedelta(days=4)


def arxiv_announcement(submitted: datetime) -> datetime:
    """The arXiv announcement (UTC) a paper submitted at `submitted` went out in."""
    if submitted.tzinfo is None:
        submitted = submitted.replace(tzinfo=UTC)
    # The cut-off is on the hour in UTC too (18:00 or 19:00), so the hour decides: cached per
    # hour, since time-zone arithmetic for every paper of a bulk import costs more than the rest
    # of its row (and a snapshot comes roughly in submission order).
    return _announcement_of_hour(int(submitted.timestamp()) // 3600)


@lru_cache(maxsize=65_536)
def _announcement_of_hour(hour: int) -> datetime:
    local = datetime.fromtimestamp(hour * 3600, ET)
    day = local.date()
    if local.time() >= CUTOFF:
        day += timedelta(days=1)
    while day.weekday() >= 5:  # Saturday, Sunday: the next cut-off is Monday's
        day += timedelta(days=1)
    if day.weekday() == 4:  # Friday's cut-off is announced on Sunday evening
        day += timedelta(days=2)
    return datetime.combine(day, ANNOUNCE_AT, ET).astimezone(UTC)


def daily_papers_moment(day: date) -> datetime:
    """A Daily Papers list's moment: the start of its day (UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def own_moment(published_at: datetime | None, hf_daily_date: date | None) -> datetime | None:
    """The announcement a paper's own dates give: its Daily Papers day, else arXiv's."""
    if hf_daily_date is not None:
        return daily_papers_moment(hf_daily_date)
    if published_at is not None:
        return arxiv_announcement(published_at)
    return None


def announced(moment: datetime | None, now: datetime) -> datetime:
    """What the store records for an announcement at `moment` it learns about at `now`."""
    if moment is None:
        return now  # no date at all: new when it arrived
    if moment >= now - LIVE_LAG:
        return max(moment, now)
    return moment
