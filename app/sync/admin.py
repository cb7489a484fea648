"""The admin's sync view: ``/admin/sync`` and its JSON twin ``/admin/api/sync/...``; retry of a run's failed
partitions as an audited POST.

A router of its own, included by :func:`app.admin.app.create_app`. It reuses the admin's roles, CSRF check and
session dependencies (``app.admin.deps``) exactly as the dead-letter writes do, and reads through
:mod:`app.sync.status` and retries through :func:`app.sync.runs.retry_failed`, the same functions
``jobs sync`` calls.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse

from app.admin.deps import MAX_ID, DbSession, Viewer, Writer
from app.admin.pages import render
from app.db.models import SyncRun
from app.errors import InvalidJob
from app.sync import runs
from app.sync.schemas import (
    QuotaOut,
    RetriedOut,
    SyncOverviewOut,
    SyncPartitionOut,
    SyncRunDetailOut,
    SyncRunOut,
)
from app.sync.status import RECENT, partitions, quota, recent_runs

#: The largest ``limit`` the runs endpoint accepts.
MAX_RUNS = 1000
KINDS = ("opportunities", "entities", "analytics", "cleanup")

api = APIRouter(prefix="/admin/api/sync", tags=["sync"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()

RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
#: Empty means any (the page's filter form sends ``kind=`` for "any").
Kind = Annotated[str | None, Query(max_length=16, pattern="^(opportunities|entities|analytics|cleanup)?$")]


def _quota() -> QuotaOut | None:
    snapshot = quota()
    return QuotaOut.model_validate(snapshot) if snapshot is not None else None


def _detail(session: DbSession, run_id: int) -> SyncRunDetailOut:
    run = session.get(SyncRun, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such sync run")
    out = SyncRunOut.model_validate(run).model_dump()
    parts = [SyncPartitionOut.model_validate(p) for p in partitions(session, run_id)]
    return SyncRunDetailOut(**out, partitions=parts)


@api.get("", response_model=SyncOverviewOut)
def overview(
    _: Viewer,
    session: DbSession,
    kind: Kind = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS)] = RECENT,
) -> SyncOverviewOut:
    """Recent runs (newest first) and the SAM.gov quota left today."""
    listed = [SyncRunOut.model_validate(r) for r in recent_runs(session, kind=kind or None, limit=limit)]
    return SyncOverviewOut(quota=_quota(), runs=listed)


@api.get("/quota", response_model=QuotaOut | None)
def get_quota(_: Viewer) -> QuotaOut | None:
    """Today's budget: used, reserve, and what scheduled and on-demand work may still spend (null: Redis down)."""
    return _quota()


@api.get("/runs/{run_id}", response_model=SyncRunDetailOut)
def get_run(run_id: RunId, _: Viewer, session: DbSession) -> SyncRunDetailOut:
    """One run with its partitions: counts, pages, requests, errors, timings."""
    return _detail(session, run_id)


@api.post("/runs/{run_id}/retry", response_model=RetriedOut)
def retry_run(run_id: RunId, principal: Writer) -> RetriedOut:
    """Send the run's failed partitions again, alone (the others are not touched); audited."""
    try:
        ids = runs.retry_failed(run_id, who=principal.user)
    except InvalidJob as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    return RetriedOut(run_id=run_id, retried=len(ids), partition_ids=ids)


@pages.get("/admin/sync", response_class=HTMLResponse)
def sync_page(
    request: Request,
    principal: Viewer,
    session: DbSession,
    run: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kind: Kind = None,
) -> HTMLResponse:
    listed = [SyncRunOut.model_validate(r) for r in recent_runs(session, kind=kind or None)]
    detail = _detail(session, run) if run is not None else None
    return render(
        request, principal, "sync.html", runs=listed, quota=_quota(), detail=detail, kind=kind, kinds=KINDS
    )


router.include_router(api)
router.include_router(pages)
