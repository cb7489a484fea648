"""Every zone meets exactly one hourly tick in its local 09:00 hour per local day, DST changes included."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from app.email.dispatch import due_zones

ZONES = ["America/New_York", "Europe/London", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham", "UTC"]


def _ticks(first: dt.date, days: int) -> list[dt.datetime]:
    start = dt.datetime.combine(first, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(days=1)
    return [start + dt.timedelta(hours=h) for h in range(24 * (days + 2))]


@pytest.mark.parametrize(
    "day", [dt.date(2026, 11, 1), dt.date(2026, 3, 29), dt.date(2026, 3, 8), dt.date(2026, 7, 1)]
)
def test_one_tick_per_zone_and_local_day(day: dt.date) -> None:
    # Given hourly ticks around a DST change day (New York falls back on 2026-11-01, London springs forward
    # on 2026-03-29, New York springs forward on 2026-03-08)
    hits: Counter[tuple[str, dt.date]] = Counter()
    when: dict[tuple[str, dt.date], dt.datetime] = {}
    for tick in _ticks(day, 1):
        for zone, local_date in due_zones(ZONES, tick).items():
            hits[(zone, local_date)] += 1
            when[(zone, local_date)] = tick
    # Then every zone gets the day exactly once, at a tick that is 09:xx local
    for zone in ZONES:
        assert hits[(zone, day)] == 1, zone
        local = when[(zone, day)].astimezone(ZoneInfo(zone))
        assert (local.date(), local.hour) == (day, 9), (zone, local)
    assert set(hits.values()) == {1}


def test_new_york_dst_change_day_is_at_14_utc_and_the_day_before_at_13_utc() -> None:
    assert due_zones(["America/New_York"], dt.datetime(2026, 10, 31, 13, tzinfo=dt.UTC)) == {
        "America/New_York": dt.date(2026, 10, 31)
    }
    assert due_zones(["America/New_York"], dt.datetime(2026, 11, 1, 13, tzinfo=dt.UTC)) == {}
    assert due_zones(["America/New_York"], dt.datetime(2026, 11, 1, 14, tzinfo=dt.UTC)) == {
        "America/New_York": dt.date(2026, 11, 1)
    }


def test_london_spring_forward_day_is_at_8_utc() -> None:
    assert due_zones(["Europe/London"], dt.datetime(2026, 3, 28, 9, tzinfo=dt.UTC)) == {
        "Europe/London": dt.date(2026, 3, 28)
    }
    assert due_zones(["Europe/London"], dt.datetime(2026, 3, 29, 8, tzinfo=dt.UTC)) == {
        "Europe/London": dt.date(2026, 3, 29)
    }
    assert due_zones(["Europe/London"], dt.datetime(2026, 3, 29, 9, tzinfo=dt.UTC)) == {}


def test_an_unknown_zone_is_treated_as_utc() -> None:
    assert due_zones(["Mars/Olympus"], dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)) == {
        "Mars/Olympus": dt.date(2026, 5, 1)
    }
