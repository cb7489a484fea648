"""Users' local time: reminders, deadlines and weeks are all in the recipient's own zone."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

logger = logging.getLogger(__name__)

UTC = ZoneInfo("UTC")


@functools.lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo:
    """The zone ``name``; UTC (logged once) for an unknown or empty name, so a bad profile cannot stop emails."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone, using UTC", extra={"timezone": name})
        return UTC


def start_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Local midnight of ``day`` as an aware datetime (correct across DST changes)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz)


def day_range(first: dt.date, days: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """``[first 00:00, first + days 00:00)`` local, in UTC."""
    return (
        start_of_day(first, tz).astimezone(dt.UTC),
        start_of_day(first + dt.timedelta(days=days), tz).astimezone(dt.UTC),
    )


def week_monday(week: str) -> dt.date:
    """The Monday of ISO ``week`` (``2026-W48``)."""
    return dt.date.fromisoformat(f"{week}-1")


def format_local(moment: dt.datetime | None, tz: ZoneInfo) -> str:
    """``Mon 23 Nov 2026, 17:00 EST``; empty for no time."""
    if moment is None:
        return ""
    return moment.astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")
