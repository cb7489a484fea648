"""The admin's schedules: ``/admin/schedules`` and its JSON twin ``/admin/api/schedules``, with pause, resume
and run now as audited POSTs.

A router of its own, included by :func:`app.admin.app.create_app`: it reuses the admin's roles, CSRF check and
session dependencies (``app.admin.deps``) exactly as the dead-letter writes do, and reads and changes schedules
only through :mod:`app.scheduler.state`, the same functions ``jobs schedules`` calls, so the page, the API and
the CLI cannot disagree about what a pause or a run-now means.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.admin.deps import DbSession, Viewer, Writer
from app.admin.pages import render
from app.db.models import AuditEvent
from app.scheduler import state

#: Fires listed under the table of the page (the API takes ``limit``).
PAGE_RUNS = 50
#: The largest ``limit`` the runs endpoint accepts.
MAX_RUNS = 1000

api = APIRouter(prefix="/admin/api/schedules", tags=["schedules"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()

ScheduleName = Annotated[str, Path(max_length=64, description="a schedule of the table, e.g. cleanup")]


class ScheduleOut(BaseModel):
    """One schedule as the scheduler sees it now (times in UTC)."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    target_actor: str
    trigger: str = Field(description="the trigger in APScheduler's words, after SCHEDULES_FILE overrides")
    enabled: bool = Field(description="false when the table or SCHEDULES_FILE disables it")
    paused: bool = Field(description="paused by an operator; persists across restarts and replicas")
    next_fire: dt.datetime | None
    last_fire: dt.datetime | None
    last_status: str | None = Field(
        description="status of the last schedule_runs row (enqueued, missed, ...)"
    )
    last_lag_s: float | None = Field(
        description="seconds between the last fire's scheduled time and its enqueue"
    )
    last_outcome: str | None = Field(description="job_runs status of the last emitted job, when known")
    missed_count: int = Field(description="fires recorded as missed (outside their grace time)")


class ScheduleRunOut(BaseModel):
    """One row of ``schedule_runs``: a fire, claimed before it was enqueued."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    fire_time: dt.datetime
    status: str
    message_id: str | None
    lag_seconds: float | None
    created_at: dt.datetime
    triggered_by: str | None


class ScheduleChangedOut(BaseModel):
    """The schedule after a pause or a resume."""

    name: str
    paused: bool


class FiredOut(BaseModel):
    """What a run-now enqueued: one message with its own idempotency key."""

    name: str
    message_id: str | None
    idempotency_key: str | None
    fire_time: dt.datetime | None
    status: str


def _not_found(err: state.UnknownSchedule) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(err))


def _audit(session: Session, who: str, action: str, name: str, detail: dict[str, object]) -> None:
    """The audit row of a write, committed with the caller's session (``get_session`` commits)."""
    session.add(AuditEvent(who=who, action=f"schedule.{action}", target=f"schedule:{name}", detail=detail))


def _state_of(name: str) -> ScheduleOut:
    for item in state.schedule_states():
        if item.name == name:
            return ScheduleOut.model_validate(item)
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown schedule {name!r}")


@api.get("", response_model=list[ScheduleOut])
def list_schedules(_: Viewer) -> list[ScheduleOut]:
    """Every schedule of the table: next and last fire, lag, last outcome, missed fires, paused flag."""
    return [ScheduleOut.model_validate(item) for item in state.schedule_states()]


@api.get("/runs", response_model=list[ScheduleRunOut])
def list_runs(
    _: Viewer,
    name: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS)] = PAGE_RUNS,
) -> list[ScheduleRunOut]:
    """Recent fires (``schedule_runs``), newest first; ``name`` keeps one schedule's."""
    return [ScheduleRunOut.model_validate(run) for run in state.recent_runs(name=name or None, limit=limit)]


@api.get("/{name}", response_model=ScheduleOut)
def get_schedule(name: ScheduleName, _: Viewer) -> ScheduleOut:
    return _state_of(name)


@api.post("/{name}/pause", response_model=ScheduleChangedOut)
def pause_schedule(name: ScheduleName, principal: Writer, session: DbSession) -> ScheduleChangedOut:
    """Stop firing ``name`` on every replica until resumed (persisted); audited."""
    try:
        state.pause(name, by=principal.user)
    except state.UnknownSchedule as err:
        raise _not_found(err) from err
    _audit(session, principal.user, "pause", name, {})
    return ScheduleChangedOut(name=name, paused=True)


@api.post("/{name}/resume", response_model=ScheduleChangedOut)
def resume_schedule(name: ScheduleName, principal: Writer, session: DbSession) -> ScheduleChangedOut:
    """Fire ``name`` again from its next scheduled time (missed ones while paused are not caught up); audited."""
    try:
        state.resume(name, by=principal.user)
    except state.UnknownSchedule as err:
        raise _not_found(err) from err
    _audit(session, principal.user, "resume", name, {})
    return ScheduleChangedOut(name=name, paused=False)


@api.post("/{name}/run", response_model=FiredOut)
def run_schedule(name: ScheduleName, principal: Writer, session: DbSession) -> FiredOut:
    """Fire ``name`` once now, with its own key, whether or not a scheduler leads; audited."""
    try:
        fired = state.run_now(name, by=principal.user)
    except state.UnknownSchedule as err:
        raise _not_found(err) from err
    out = FiredOut.model_validate(fired, from_attributes=True)
    _audit(session, principal.user, "run", name, {"message_id": out.message_id, "status": out.status})
    return out


@pages.get("/admin/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, principal: Viewer) -> HTMLResponse:
    schedules = [ScheduleOut.model_validate(item) for item in state.schedule_states()]
    runs = [ScheduleRunOut.model_validate(run) for run in state.recent_runs(limit=PAGE_RUNS)]
    return render(request, principal, "schedules.html", schedules=schedules, runs=runs)


router.include_router(api)
router.include_router(pages)
