"""The schedule table as this process runs it: ``schedules/`` with ``SCHEDULES_FILE``'s overrides, triggers built.

Triggers are APScheduler's (``CronTrigger``, ``IntervalTrigger``) in ``SCHEDULER_TIMEZONE``, so DST is theirs:
a cron time that does not exist on the spring-forward day fires at the first instant after the gap, an hourly
cron fires every real hour (23 or 25 on DST days). One rule is added: a cron trigger with a fixed hour does not
fire a second time in the repeated hour of the fall-back day (APScheduler would fire ``01:30`` twice), so a
daily schedule fires once a day. Every replica must compute the same fire times, or the same fire would get two
keys: an interval trigger is therefore anchored at 2000-01-01 00:00 in the table's zone (APScheduler's default,
"now", differs per replica) unless the file gives its own ``start_date``, and ``jitter`` is refused.

A bad ``SCHEDULES_FILE`` raises :class:`ScheduleFileError`, one line naming the schedule and the field; the CLI
prints it and exits 2 like any other bad setting.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from app.errors import SettingsError
from schedules import SCHEDULES, Schedule

#: Fields each trigger type accepts in the table and in ``SCHEDULES_FILE`` (APScheduler's own names).
CRON_FIELDS = frozenset(CronTrigger.FIELD_NAMES) | {"start_date", "end_date"}
INTERVAL_FIELDS = frozenset({"weeks", "days", "hours", "minutes", "seconds", "start_date", "end_date"})
#: Keys of a ``SCHEDULES_FILE`` section that are not trigger fields.
OPTION_KEYS = frozenset({"trigger", "enabled", "misfire_grace_time"})
#: Interval triggers count from here (in the table's zone) unless the file gives ``start_date``.
INTERVAL_ANCHOR = dt.datetime(2000, 1, 1)
_TINY = dt.timedelta(microseconds=1)


class ScheduleFileError(SettingsError):
    """``SCHEDULES_FILE`` cannot be used; the message names the schedule and the field."""


@dataclass(frozen=True)
class ResolvedSchedule:
    """One schedule with its effective trigger, grace and enabled flag."""

    schedule: Schedule
    trigger: BaseTrigger
    misfire_grace_s: float
    enabled: bool
    zone: ZoneInfo

    @property
    def name(self) -> str:
        return self.schedule.name

    @property
    def actor(self) -> str:
        return self.schedule.actor

    def describe(self) -> str:
        """The trigger in words, e.g. ``cron[hour='3', minute='0'] (America/New_York)``."""
        return f"{self.trigger} ({self.zone.key})"

    def arguments(self, fire_time: dt.datetime) -> dict[str, Any]:
        """The job's keyword arguments for the fire at ``fire_time``."""
        return self.schedule.arguments(fire_time, self.zone)

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first fire strictly after ``moment`` (aware UTC), or None when the trigger has ended."""
        candidate = moment
        while True:
            fire = self._first_after(candidate)
            if fire is None or not self._repeat_of_fold(fire):
                return fire
            candidate = fire

    def _first_after(self, moment: dt.datetime) -> dt.datetime | None:
        # APScheduler's cron loses the fold of a time in the repeated hour: asked for the first fire after
        # 01:00:00.000001 EST it answers 01:00 EST again. Cron fires are whole seconds, so probing from one second
        # later cannot skip one.
        for probe in (moment + _TINY, moment + dt.timedelta(seconds=1)):
            fire: dt.datetime | None = self.trigger.get_next_fire_time(None, probe.astimezone(self.zone))
            if fire is None:
                return None
            if (fire := fire.astimezone(dt.UTC)) > moment:
                return fire
        raise RuntimeError(f"trigger of {self.name} does not advance past {moment.isoformat()}")

    def fires_between(
        self, after: dt.datetime, until: dt.datetime, *, limit: int | None = None
    ) -> list[dt.datetime]:
        """Fire times in ``(after, until]``, oldest first; at most ``limit`` of them."""
        fires: list[dt.datetime] = []
        fire = self.next_after(after)
        while fire is not None and fire <= until and (limit is None or len(fires) < limit):
            fires.append(fire)
            fire = self.next_after(fire)
        return fires

    def _repeat_of_fold(self, fire: dt.datetime) -> bool:
        """A fixed-hour cron fire in the second pass of a fall-back hour: the first pass already fired it."""
        if not isinstance(self.trigger, CronTrigger):
            return False
        local = fire.astimezone(self.zone)
        if local.fold == 0 or local.replace(fold=0).utcoffset() == local.utcoffset():
            return False
        hour = next(f for f in self.trigger.fields if f.name == "hour")
        return not hour.is_default and str(hour) != "*"


def load_schedules(zone_name: str, schedules_file: Path | None) -> list[ResolvedSchedule]:
    """The table with the file's overrides applied, in table order; raises :class:`ScheduleFileError`."""
    zone = ZoneInfo(zone_name)
    overrides = _read_file(schedules_file) if schedules_file is not None else {}
    known = {s.name for s in SCHEDULES}
    for name in overrides:
        if name not in known:
            raise ScheduleFileError(
                f"invalid SCHEDULES_FILE: [{name}]: no such schedule (known: {', '.join(sorted(known))})"
            )
    return [_resolve(s, overrides.get(s.name, {}), zone) for s in SCHEDULES]


def build_trigger(name: str, fields: Mapping[str, Any], zone: ZoneInfo) -> BaseTrigger:
    """APScheduler's trigger for ``fields`` (``trigger`` included); errors name ``name`` and the field."""
    kind = fields.get("trigger")
    params = {k: v for k, v in fields.items() if k != "trigger"}
    if kind == "cron":
        allowed = CRON_FIELDS
    elif kind == "interval":
        allowed = INTERVAL_FIELDS
    else:
        raise _field_error(name, "trigger", 'must be "cron" or "interval"')
    for key in params:
        if key not in allowed:
            hint = " (replicas must agree on fire times)" if key == "jitter" else ""
            raise _field_error(name, key, f"is not a field of the {kind} trigger{hint}")
    if kind == "interval":
        return _interval(name, params, zone)
    for key, value in params.items():
        try:
            CronTrigger(timezone=zone, **{key: value})
        except (ValueError, TypeError) as err:
            raise _field_error(name, key, str(err)) from None
    try:
        return CronTrigger(timezone=zone, **params)
    except (ValueError, TypeError) as err:
        raise _field_error(name, "trigger", str(err)) from None


def _interval(name: str, params: Mapping[str, Any], zone: ZoneInfo) -> IntervalTrigger:
    for key, value in params.items():
        if key in ("start_date", "end_date"):
            if not isinstance(value, dt.datetime | dt.date | str):
                raise _field_error(name, key, "must be a date-time")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise _field_error(name, key, "must be a number of at least 0")
    amounts = {k: v for k, v in params.items() if k not in ("start_date", "end_date")}
    if not any(amounts.values()):
        raise _field_error(
            name, "seconds", "an interval trigger needs a positive weeks/days/hours/minutes/seconds"
        )
    extra = dict(params)
    extra.setdefault("start_date", INTERVAL_ANCHOR.replace(tzinfo=zone))
    try:
        return IntervalTrigger(timezone=zone, **extra)
    except (ValueError, TypeError) as err:
        raise _field_error(name, "start_date", str(err)) from None


def _resolve(schedule: Schedule, override: Mapping[str, Any], zone: ZoneInfo) -> ResolvedSchedule:
    fields = dict(schedule.trigger)
    trigger_keys = {k: v for k, v in override.items() if k not in OPTION_KEYS - {"trigger"}}
    if "trigger" in trigger_keys:
        fields = dict(trigger_keys)  # a new trigger replaces the table's fields
    else:
        fields.update(trigger_keys)  # fields alone adjust the table's trigger (e.g. hour = 4)
    enabled = override.get("enabled", schedule.enabled)
    if not isinstance(enabled, bool):
        raise _field_error(schedule.name, "enabled", "must be true or false")
    grace = override.get("misfire_grace_time", schedule.misfire_grace_s)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        raise _field_error(schedule.name, "misfire_grace_time", "must be a number of seconds of at least 0")
    return ResolvedSchedule(schedule, build_trigger(schedule.name, fields, zone), float(grace), enabled, zone)


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScheduleFileError(f"invalid SCHEDULES_FILE: cannot read {path}: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ScheduleFileError(f"invalid SCHEDULES_FILE: {path} is not TOML: {err}") from None
    for name, section in data.items():
        if not isinstance(section, dict):
            raise ScheduleFileError(f"invalid SCHEDULES_FILE: {name}: must be a [{name}] table")
    return data


def _field_error(name: str, key: str, message: str) -> ScheduleFileError:
    return ScheduleFileError(f"invalid SCHEDULES_FILE: [{name}] {key}: {' '.join(message.split())}")
