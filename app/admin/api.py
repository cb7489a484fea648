"""The JSON API under ``/admin/api/``: one endpoint per page, plus the dead-letter writes.

Reads need any login (or none when no password is set); writes need the admin role and the CSRF token.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from app import dead_letters
from app.admin import queries
from app.admin.auth import CSRF_HEADER, csrf_token
from app.admin.deps import MAX_ID, DbSession, DeadLetterSearch, JobSearch, Viewer, Writer
from app.admin.schemas import (
    CsrfOut,
    DeadLetterDetailOut,
    DeadLetterGroupOut,
    DeadLetterListOut,
    DeadLetterOut,
    DeadLetterSelection,
    DiscardedOut,
    DocumentProgressOut,
    JobRunOut,
    QueueOut,
    RequeuedOut,
    WorkerOut,
)
from app.constants import QUEUES
from app.db.models import DeadLetter
from app.errors import PermanentError
from app.redis_client import get_broker_redis, get_redis

router = APIRouter(prefix="/admin/api", tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)]


def worker_out(worker: queries.WorkerInfo) -> WorkerOut:
    started = dt.datetime.fromtimestamp(worker.started, dt.UTC) if worker.started else None
    return WorkerOut(
        host=worker.host,
        pid=worker.pid,
        queues=list(worker.queues),
        threads=worker.threads,
        started=started,
        uptime_s=worker.uptime_s,
        expires_in_s=worker.expires_in_s,
    )


@router.get("/csrf", response_model=CsrfOut)
def get_csrf(request: Request, principal: Viewer) -> CsrfOut:
    """The token to send as ``X-CSRF-Token`` with every write (kept in the signed session cookie)."""
    token = csrf_token(request)
    return CsrfOut(csrf_token=token, header=CSRF_HEADER, user=principal.user, role=principal.role)


@router.get("/queues", response_model=list[QueueOut])
def get_queues(_: Viewer, session: DbSession) -> list[QueueOut]:
    return [
        QueueOut(**asdict(row))
        for row in queries.queue_overview(session, get_redis(), QUEUES, broker_client=get_broker_redis())
    ]


@router.get("/queues/{queue}", response_model=QueueOut)
def get_queue(queue: Annotated[str, Path(max_length=100)], _: Viewer, session: DbSession) -> QueueOut:
    if queue not in QUEUES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown queue {queue!r}")
    return QueueOut(
        **asdict(queries.queue_overview(session, get_redis(), [queue], broker_client=get_broker_redis())[0])
    )


@router.get("/workers", response_model=list[WorkerOut])
def get_workers(_: Viewer) -> list[WorkerOut]:
    return [worker_out(w) for w in queries.list_workers(get_redis())]


@router.get("/jobs", response_model=list[JobRunOut])
def get_jobs(_: Viewer, session: DbSession, query: JobSearch) -> list[JobRunOut]:
    """Search the job history, newest first (documents jobs with their document's progress)."""
    runs = queries.search_jobs(session, query)
    documents = queries.document_progress(session, runs)
    return [
        JobRunOut.model_validate(run).model_copy(
            update={"document": _document(documents.get(run.message_id))}
        )
        for run in runs
    ]


def _document(row: object | None) -> DocumentProgressOut | None:
    return None if row is None else DocumentProgressOut.model_validate(row)


@router.get("/dead-letters", response_model=DeadLetterListOut)
def get_dead_letters(
    _: Viewer, session: DbSession, where: DeadLetterSearch, limit: Limit = 100
) -> DeadLetterListOut:
    """Dead letters matching the filter (newest first) and their groups by fingerprint."""
    groups = queries.dead_letter_groups(session, where, limit=limit)
    items = dead_letters.list_dead_letters(session, where, limit=limit)
    return DeadLetterListOut(
        groups=[DeadLetterGroupOut(**asdict(g)) for g in groups],
        items=[DeadLetterOut.model_validate(row) for row in items],
    )


@router.get("/dead-letters/{dead_letter_id}", response_model=DeadLetterDetailOut)
def get_dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=MAX_ID)], _: Viewer, session: DbSession
) -> DeadLetterDetailOut:
    row = session.get(DeadLetter, dead_letter_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such dead letter")
    return DeadLetterDetailOut.model_validate(row)


def _selection_filter(body: DeadLetterSelection) -> dead_letters.DeadLetterFilter:
    return dead_letters.DeadLetterFilter(
        ids=tuple(body.ids),
        queue=body.queue,
        actor=body.actor,
        fingerprint=body.fingerprint,
        exception_type=body.exception_type,
        status="dead",
    )


@router.post("/dead-letters/requeue", response_model=RequeuedOut)
def requeue_dead_letters(body: DeadLetterSelection, principal: Writer, session: DbSession) -> RequeuedOut:
    """Send a fresh copy of each selected dead letter (same idempotency key, retries reset); audited."""
    try:
        pairs = dead_letters.requeue(session, _selection_filter(body), who=principal.user)
    except PermanentError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    return RequeuedOut(requeued=len(pairs), messages=[{"id": i, "new_message_id": m} for i, m in pairs])


@router.post("/dead-letters/discard", response_model=DiscardedOut)
def discard_dead_letters(body: DeadLetterSelection, principal: Writer, session: DbSession) -> DiscardedOut:
    """Mark the selected dead letters discarded (kept for the record, never requeued); audited."""
    return DiscardedOut(discarded=dead_letters.discard(session, _selection_filter(body), who=principal.user))
