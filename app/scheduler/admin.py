"""The admin's schedules: ``/admin/schedules`` and its JSON twin ``/admin/api/schedules``, with pause, resume
and run now as audited POSTs.

A router of its own, included by :func:`app.admin.app.create_app`: it reuses the admin's roles, CSRF check and
session dependencies (``app.admin.deps``) exactly as the dead-letter writes do, and reads and changes schedules
only through :mod:`app.scheduler.state`, the same functions ``jobs schedules`` calls, so the page, the API and
the CLI cannot disagree about what a pause or a run-now means.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.admin.auth import Principal
from app.admin.deps import DbSession, Viewer, Writer
from app.admin.pages import render
from app.errors import JobError
from app.scheduler import audit, state
from app.scheduler.schemas import FiredOut, ScheduleChangedOut, ScheduleOut, ScheduleRunOut

#: Fires listed under the table of the page (the API takes ``limit``).
PAGE_RUNS = 50
#: The largest ``limit`` the runs endpoint accepts.
MAX_RUNS = 1000

api = APIRouter(prefix="/admin/api/schedules", tags=["schedules"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()

ScheduleName = Annotated[str, Path(max_length=64, description="a schedule of the table, e.g. cleanup")]


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """An unknown schedule is 404; any other refusal (say, resuming a disabled schedule) 409, with its reason."""
    try:
        yield
    except state.UnknownSchedule as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except JobError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err


def _fired_detail(out: FiredOut) -> dict[str, object]:
    return {"message_id": out.message_id, "status": out.status, "key": out.key}


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
    with _refusals():
        runs = state.recent_runs(name=name or None, limit=limit)
    return [ScheduleRunOut.model_validate(run) for run in runs]


@api.get("/{name}", response_model=ScheduleOut)
def get_schedule(name: ScheduleName, _: Viewer) -> ScheduleOut:
    return _state_of(name)


@api.post("/{name}/pause", response_model=ScheduleChangedOut)
def pause_schedule(name: ScheduleName, principal: Writer, session: DbSession) -> ScheduleChangedOut:
    """Stop firing ``name`` on every replica until resumed (persisted); audited."""
    return _set_paused(name, principal, session, paused=True)


@api.post("/{name}/resume", response_model=ScheduleChangedOut)
def resume_schedule(name: ScheduleName, principal: Writer, session: DbSession) -> ScheduleChangedOut:
    """Fire ``name`` again from its next scheduled time (missed ones while paused are not caught up); audited."""
    return _set_paused(name, principal, session, paused=False)


def _set_paused(name: str, principal: Principal, session: Session, *, paused: bool) -> ScheduleChangedOut:
    """Pause or resume, then audit it as ``pause``/``resume`` in the same request."""
    with _refusals():
        (state.pause if paused else state.resume)(name, by=principal.user)
    audit.record(session, who=principal.user, action="pause" if paused else "resume", name=name)
    session.commit()
    return ScheduleChangedOut(name=name, paused=paused)


@api.post("/{name}/run", response_model=FiredOut)
def run_schedule(name: ScheduleName, principal: Writer, session: DbSession) -> FiredOut:
    """Fire ``name`` once now, with its own key, whether or not a scheduler leads; audited."""
    with _refusals():
        fired = state.run_now(name, by=principal.user)
    out = FiredOut.model_validate(fired, from_attributes=True)
    audit.record(session, who=principal.user, action="run", name=name, detail=_fired_detail(out))
    session.commit()
    return out


@pages.get("/admin/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, principal: Viewer) -> HTMLResponse:
    schedules = [ScheduleOut.model_validate(item) for item in state.schedule_states()]
    runs = [ScheduleRunOut.model_validate(run) for run in state.recent_runs(limit=PAGE_RUNS)]
    return render(request, principal, "schedules.html", schedules=schedules, runs=runs)


router.include_router(api)
router.include_router(pages)
