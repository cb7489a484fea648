"""The six schedules of the platform.

Triggers are APScheduler's own fields (``{"trigger": "cron", "hour": 3, "minute": 0}``), read in
``SCHEDULER_TIMEZONE``; ``SCHEDULES_FILE`` overrides them with the same fields. An arguments builder turns the
fire time (aware, UTC) into the job's keyword arguments, so a fire late by a few seconds, or caught up after a
takeover, asks for the work of its own fire time, not of the moment it ran.

A target actor that is not in the job catalogue yet (the ``sync`` actors arrive with their issue) is not an
error: its fires are recorded as ``skipped`` with that reason, and the schedule starts working the release its
actor lands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

#: Fire time (aware, UTC) and the zone of the table -> the job's keyword arguments.
ArgumentsBuilder = Callable[[dt.datetime, ZoneInfo], dict[str, Any]]


def _no_arguments(_fire_time: dt.datetime, _zone: ZoneInfo) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Schedule:
    """One row of the table."""

    name: str
    actor: str
    #: APScheduler trigger fields, ``trigger`` included (``cron`` or ``interval``).
    trigger: Mapping[str, Any]
    #: How late a fire may still run when the leader comes up or takes over; older ones are recorded missed.
    misfire_grace_s: float
    arguments: ArgumentsBuilder = field(default=_no_arguments)
    enabled: bool = True
    description: str = ""


def _daily_reminders(fire_time: dt.datetime, _zone: ZoneInfo) -> dict[str, Any]:
    # The dispatcher floors `at` to its UTC hour and picks the zones where that hour is 09:xx locally.
    return {"at": fire_time}


def _this_week(fire_time: dt.datetime, zone: ZoneInfo) -> dict[str, Any]:
    # The summary of ISO week W is sent at W's start (app/email/content/weekly.py): the week of the fire's
    # local day, in the table's zone, even when the fire runs late.
    year, week, _ = fire_time.astimezone(zone).date().isocalendar()
    return {"week": f"{year}-W{week:02d}"}


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "daily-reminders",
        "dispatch_daily_reminders",
        # Every hour of real time (23 or 25 on DST days): each user's 09:00 falls in exactly one of them.
        {"trigger": "cron", "minute": 0},
        misfire_grace_s=30 * 60,
        arguments=_daily_reminders,
        description="hourly; each user gets one reminder at 09:00 in their own zone",
    ),
    Schedule(
        "sam-sync",
        "sync_opportunities",
        {"trigger": "cron", "hour": "*/6", "minute": 0},
        misfire_grace_s=60 * 60,
        # No arguments: the sync is incremental from its own watermark, so a late fire loses nothing.
        description="incremental SAM.gov opportunity sync every 6 h",
    ),
    Schedule(
        "entity-sync",
        "sync_entities",
        {"trigger": "cron", "hour": 3, "minute": 0},
        misfire_grace_s=2 * 60 * 60,
        description="daily entity refresh",
    ),
    Schedule(
        "analytics-refresh",
        "refresh_analytics",
        {"trigger": "cron", "minute": 30},
        misfire_grace_s=15 * 60,
        description="hourly analytics refresh",
    ),
    Schedule(
        "cleanup",
        "cleanup_data",
        {"trigger": "cron", "hour": 2, "minute": 0},
        misfire_grace_s=2 * 60 * 60,
        description="daily pruning of old history and files",
    ),
    Schedule(
        "weekly-reports",
        "dispatch_weekly_summaries",
        {"trigger": "cron", "day_of_week": "mon", "hour": 8, "minute": 0},
        misfire_grace_s=4 * 60 * 60,
        arguments=_this_week,
        description="Monday's weekly summaries of the week that starts",
    ),
)


def by_name(name: str) -> Schedule | None:
    """The schedule called ``name``, or None."""
    return next((s for s in SCHEDULES if s.name == name), None)
