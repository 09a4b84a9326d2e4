"""The one Retry-After reading, as the sources, Slack and Discord use it."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.ports import retry_after

NOW = datetime(2026, 6, 12, 12, 0, tzinfo=UTC)


def test_seconds_dates_and_ratelimit_in_any_header_shape() -> None:
    assert retry_after({"Retry-After": "30"}) == 30.0
    assert retry_after({"retry-after": ["7"]}) == 7.0  # slack_sdk keeps lists
    assert retry_after({"Retry-After": "Fri, 12 Jun 2026 12:00:30 GMT"}, now=NOW) == 30.0
    assert retry_after({"RateLimit": "limit=10, remaining=0, t=12"}) == 12.0


def test_nothing_usable_gives_the_callers_default_within_its_bounds() -> None:
    for headers in (None, {}, {"Retry-After": ""}, {"Retry-After": "soon"}, {"Retry-After": "nan"}):
        assert retry_after(headers) is None
        assert retry_after(headers, default=5.0) == 5.0
    assert retry_after({"Retry-After": "-3"}, default=5.0) == 0.0
    assert retry_after({"Retry-After": "0.2"}, default=1.0, minimum=1.0) == 1.0
    assert retry_after({"Retry-After": "1e12"}) == 24 * 3600.0
    assert retry_after({"Retry-After": "Fri, 12 Jun 2026 11:00:00 GMT"}, now=NOW) == 0.0
