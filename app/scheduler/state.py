"""What operators see and change of the schedules: the API behind ``jobs schedules`` and ``/admin/schedules``.

Every function works from any process (leader, standby, CLI, admin): pause and resume are rows in
``schedule_state``, which the leader reads on every tick, so they hold across restarts and replicas without
telling the leader anything; a run-now is a fire of its own (its own ``schedule_runs`` row and key), claimed and
enqueued by the caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.errors import InvalidJob


class UnknownSchedule(InvalidJob):
    """No schedule of that name in the table."""


@dataclass(frozen=True)
class FireResult:
    """What one fire did: ``status`` is enqueued, skipped, failed or manual (a run-now that was enqueued)."""

    name: str
    fire_time: dt.datetime
    status: str
    message_id: str | None = None
    #: Why a fire was skipped or failed (e.g. the target actor is not in the catalogue yet).
    reason: str | None = None
    #: The idempotency key the message carries: ``schedule:<name>:<fire time>``.
    key: str = ""
    #: True when another replica (or an earlier attempt) had already claimed this fire: nothing was sent.
    duplicate: bool = False


@dataclass(frozen=True)
class ScheduleRunView:
    """One ``schedule_runs`` row, with the outcome of the job it emitted when the job history knows it."""

    name: str
    fire_time: dt.datetime
    status: str  # claimed, enqueued, skipped, missed, failed, manual
    reason: str | None
    message_id: str | None
    lag_s: float | None
    enqueued_at: dt.datetime | None
    replica: str | None
    triggered_by: str | None
    #: The emitted job's status in ``job_runs`` (succeeded, retrying, dead, ...), None when unknown.
    outcome: str | None


@dataclass(frozen=True)
class ScheduleState:
    """One schedule as the table, the overrides file and the database see it now."""

    name: str
    target_actor: str
    #: The trigger in words, e.g. ``cron[hour='3', minute='0'] (UTC)`` or ``interval[0:00:30]``.
    trigger: str
    #: From the table and ``SCHEDULES_FILE``; a disabled schedule never fires and cannot be resumed.
    enabled: bool
    #: Paused by an operator (persisted); the leader skips its fires until resumed.
    paused: bool
    next_fire: dt.datetime | None
    last_fire: dt.datetime | None
    last_status: str | None
    last_lag_s: float | None
    last_outcome: str | None
    missed_count: int


def schedule_states() -> list[ScheduleState]:
    """Every schedule of the table, in table order."""
    raise NotImplementedError


def pause(name: str, *, by: str) -> None:
    """Pause ``name`` (persisted; idempotent). Raises :class:`UnknownSchedule`."""
    raise NotImplementedError


def resume(name: str, *, by: str) -> None:
    """Resume ``name``: it fires from its next fire time on (fires while paused are not caught up)."""
    raise NotImplementedError


def run_now(name: str, *, by: str) -> FireResult:
    """Fire ``name`` once now, with its own fire time and key, whether or not this process leads.

    Works for paused and disabled schedules too (an operator asked for it). Raises :class:`UnknownSchedule`.
    """
    raise NotImplementedError


def recent_runs(name: str | None = None, limit: int = 50) -> list[ScheduleRunView]:
    """The latest ``schedule_runs`` rows (of ``name``, or of every schedule), newest fire first."""
    raise NotImplementedError
