"""What operators see and change of the schedules: the API behind ``jobs schedules`` and ``/admin/schedules``.

Every function works from any process (leader, standby, CLI, admin): pause and resume are rows in
``schedule_state``, which the leader reads on every tick, so they hold across restarts and replicas without
telling the leader anything; a run-now is a fire of its own (its own ``schedule_runs`` row and key), claimed and
enqueued by the caller.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import JobRun, ScheduleRun
from app.db.models import ScheduleState as ScheduleStateRow
from app.db.session import session_scope
from app.errors import InvalidJob
from app.scheduler.config import ResolvedSchedule, load_schedules


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
    table = _table()
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        paused = _paused(session)
        latest = {
            row.name: row
            for row in session.scalars(
                select(ScheduleRun).where(
                    ScheduleRun.id.in_(
                        select(func.max(ScheduleRun.id))
                        .where(ScheduleRun.status.in_(("enqueued", "manual", "skipped", "failed", "claimed")))
                        .group_by(ScheduleRun.name)
                    )
                )
            )
        }
        missed = dict(
            session.execute(
                select(ScheduleRun.name, func.count())
                .where(ScheduleRun.status == "missed")
                .group_by(ScheduleRun.name)
            ).all()
        )
        outcomes = _outcomes(session, [r.message_id for r in latest.values() if r.message_id])
    states = []
    for schedule in table:
        last = latest.get(schedule.name)
        states.append(
            ScheduleState(
                name=schedule.name,
                target_actor=schedule.actor,
                trigger=schedule.describe(),
                enabled=schedule.enabled,
                paused=schedule.name in paused,
                next_fire=schedule.next_after(now) if schedule.enabled else None,
                last_fire=last.fire_time if last else None,
                last_status=last.status if last else None,
                last_lag_s=last.lag_seconds if last else None,
                last_outcome=outcomes.get(last.message_id) if last and last.message_id else None,
                missed_count=missed.get(schedule.name, 0),
            )
        )
    return states


def pause(name: str, *, by: str) -> None:
    """Pause ``name`` (persisted; idempotent). Raises :class:`UnknownSchedule`.

    ``by`` is recorded on the state row; the audit entry is the caller's (``app/scheduler/audit.py``).
    """
    _set_paused(resolve(name).name, paused=True, by=by)


def resume(name: str, *, by: str) -> None:
    """Resume ``name``: it fires from its next fire time on (fires while paused are not caught up)."""
    _set_paused(resolve(name).name, paused=False, by=by)


def run_now(name: str, *, by: str) -> FireResult:
    """Fire ``name`` once now, with its own fire time and key, whether or not this process leads.

    Works for paused and disabled schedules too (an operator asked for it). Raises
    :class:`UnknownSchedule`.
    """
    from app.scheduler.fire import fire, replica_id

    schedule = resolve(name)
    now = dt.datetime.now(dt.UTC)
    return fire(schedule, now, now=now, replica=replica_id(), manual_by=by)


def recent_runs(name: str | None = None, limit: int = 50) -> list[ScheduleRunView]:
    """The latest ``schedule_runs`` rows (of ``name``, or of every schedule), newest fire first."""
    query = select(ScheduleRun).order_by(ScheduleRun.fire_time.desc(), ScheduleRun.id.desc()).limit(limit)
    if name is not None:
        query = query.where(ScheduleRun.name == resolve(name).name)
    with session_scope() as session:
        rows = list(session.scalars(query))
        outcomes = _outcomes(session, [r.message_id for r in rows if r.message_id])
    return [
        ScheduleRunView(
            name=row.name,
            fire_time=row.fire_time,
            status=row.status,
            reason=row.reason,
            message_id=row.message_id,
            lag_s=row.lag_seconds,
            enqueued_at=row.enqueued_at,
            replica=row.replica,
            triggered_by=row.triggered_by,
            outcome=outcomes.get(row.message_id) if row.message_id else None,
        )
        for row in rows
    ]


def resolve(name: str) -> ResolvedSchedule:
    """The schedule ``name`` as this process runs it; raises :class:`UnknownSchedule`."""
    for schedule in _table():
        if schedule.name == name:
            return schedule
    known = ", ".join(s.name for s in _table())
    raise UnknownSchedule(f"unknown schedule {name!r}; known: {known}")


@functools.cache
def _table_for(zone: str, path: str | None) -> tuple[ResolvedSchedule, ...]:
    from pathlib import Path

    return tuple(load_schedules(zone, Path(path) if path else None))


def _table() -> tuple[ResolvedSchedule, ...]:
    """The table with ``SCHEDULES_FILE`` applied (read once per settings; a bad file raises ScheduleFileError)."""
    from app.settings import get_settings

    settings = get_settings()
    path = str(settings.schedules_file) if settings.schedules_file else None
    return _table_for(settings.scheduler_timezone, path)


def _paused(session: Session) -> set[str]:
    return set(session.scalars(select(ScheduleStateRow.name).where(ScheduleStateRow.paused.is_(True))))


def _outcomes(session: Session, message_ids: list[str]) -> dict[str, str]:
    if not message_ids:
        return {}
    return dict(
        session.execute(
            select(JobRun.message_id, JobRun.status).where(JobRun.message_id.in_(message_ids))
        ).all()
    )


def _set_paused(name: str, *, paused: bool, by: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        row = session.get(ScheduleStateRow, name, with_for_update=True)
        if row is None:
            row = ScheduleStateRow(name=name, paused=False, changed_at=now)
            session.add(row)
        was_paused = row.paused
        row.paused, row.changed_by, row.changed_at = paused, by, now
        if was_paused and not paused:
            row.resumed_at = now
