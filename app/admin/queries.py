"""What the admin reads from Redis and the database: small functions, no web types, no actor imports.

Queue numbers cost O(1) Redis commands per queue (``app.transport.queue_stats``) plus two grouped SQL queries for all
queues together; workers come from the ``jobs:heartbeat:<queue>:<host>:<pid>`` keys the workers refresh.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.constants import DOCUMENTS_QUEUE
from app.db.models import DeadLetter, Document, JobRun
from app.db.session import get_engine
from app.db.types import utcnow
from app.dead_letters import DeadLetterFilter
from app.transport import WorkerInfo as WorkerInfo  # the type list_workers returns, for the API schemas
from app.transport import live_workers, queue_stats

logger = logging.getLogger(__name__)

#: Window of the throughput column of the queue overview.
THROUGHPUT_WINDOW = dt.timedelta(hours=1)
#: Upper bound on rows any list query returns, whatever the caller asks for.
MAX_LIMIT = 500


# --------------------------------------------------------------------------------------------- health


def check_redis(client: redis.Redis[bytes]) -> None:
    """Raise unless Redis answers PING."""
    client.ping()


def check_database() -> None:
    """Raise unless the database answers ``SELECT 1``."""
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


# --------------------------------------------------------------------------------------------- workers


def list_workers(client: redis.Redis[bytes]) -> list[WorkerInfo]:
    """Live workers, sorted by host and pid (from the transport's worker registry)."""
    return live_workers(client)


# ---------------------------------------------------------------------------------------------- queues


@dataclass(frozen=True)
class QueueOverview:
    """One row of ``/admin/queues``."""

    queue: str
    ready: int
    delayed: int
    in_progress: int
    #: Dead letters archived with status ``dead`` plus those still in Dramatiq's XQ (not imported yet).
    dead: int
    dead_archived: int
    dead_in_xq: int
    oldest_age_seconds: float
    #: Messages of this queue finished (any outcome) in the last hour, from ``job_runs``.
    throughput_last_hour: int
    failed_last_hour: int
    workers: int
    worker_hosts: list[str] = field(default_factory=list)


def queue_overview(
    session: Session,
    client: redis.Redis[bytes],
    queues: Sequence[str],
    *,
    broker_client: redis.Redis[bytes] | None = None,
    now: dt.datetime | None = None,
) -> list[QueueOverview]:
    """Every queue's numbers: O(1) Redis commands per queue and two grouped SQL queries in all.

    ``client`` holds the platform's keys (the worker registry), ``broker_client`` Dramatiq's (the queues; by
    default the same Redis, as when ``BROKER_URL`` is unset)."""
    stats = queue_stats(queues, broker_client or client)
    dead_query = (
        select(DeadLetter.queue, func.count())
        .where(DeadLetter.status == "dead", DeadLetter.queue.in_(queues))
        .group_by(DeadLetter.queue)
    )
    dead = {queue: int(count) for queue, count in session.execute(dead_query)}
    since = (now or utcnow()) - THROUGHPUT_WINDOW
    finished: dict[str, tuple[int, int]] = {}
    for queue, total, failed in session.execute(
        select(JobRun.queue, func.count(), func.count().filter(JobRun.status == "dead"))
        .where(JobRun.finished_at >= since, JobRun.queue.in_(queues))
        .group_by(JobRun.queue)
    ):
        finished[queue] = (int(total), int(failed))
    workers = list_workers(client)
    rows = []
    for s in stats:
        archived = int(dead.get(s.queue, 0))
        serving = [w for w in workers if s.queue in w.queues]
        total, failed = finished.get(s.queue, (0, 0))
        rows.append(
            QueueOverview(
                queue=s.queue,
                ready=s.ready,
                delayed=s.delayed,
                in_progress=s.in_progress,
                dead=archived + s.dead,
                dead_archived=archived,
                dead_in_xq=s.dead,
                oldest_age_seconds=round(s.oldest_age_seconds, 3),
                throughput_last_hour=total,
                failed_last_hour=failed,
                workers=len(serving),
                worker_hosts=sorted({f"{w.host}:{w.pid}" for w in serving}),
            )
        )
    return rows


# ------------------------------------------------------------------------------------------ dead letters


@dataclass(frozen=True)
class DeadLetterGroup:
    """Dead letters sharing a fingerprint (one cause): what an operator repairs in one go."""

    fingerprint: str
    queue: str
    actor: str
    exception_type: str
    count: int
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime
    latest_id: int
    latest_message: str


def dead_letter_groups(
    session: Session, where: DeadLetterFilter, *, limit: int = 100
) -> list[DeadLetterGroup]:
    """Groups by fingerprint, the most recently failing first."""
    query = where.apply(
        select(
            DeadLetter.fingerprint,
            DeadLetter.queue,
            DeadLetter.actor,
            DeadLetter.exception_type,
            func.count(),
            func.min(DeadLetter.failed_at),
            func.max(DeadLetter.failed_at),
            func.max(DeadLetter.id),
        )
    )
    query = query.group_by(
        DeadLetter.fingerprint, DeadLetter.queue, DeadLetter.actor, DeadLetter.exception_type
    ).order_by(func.max(DeadLetter.failed_at).desc())
    rows = session.execute(query.limit(min(limit, MAX_LIMIT))).all()
    latest_ids = [row[7] for row in rows]
    latest_query = select(DeadLetter.id, DeadLetter.exception_message).where(DeadLetter.id.in_(latest_ids))
    messages = {row_id: message for row_id, message in session.execute(latest_query)}
    return [
        DeadLetterGroup(
            fingerprint=fp,
            queue=queue,
            actor=actor,
            exception_type=exc,
            count=int(count),
            first_failed_at=first,
            last_failed_at=last,
            latest_id=int(latest),
            latest_message=(messages.get(latest) or "")[:500],
        )
        for fp, queue, actor, exc, count, first, last, latest in rows
    ]


# ------------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class JobQuery:
    """A search in ``job_runs``; empty fields do not filter."""

    message_id: str | None = None
    queue: str | None = None
    actor: str | None = None
    status: str | None = None
    correlation_id: str | None = None
    #: Substring of the arguments' JSON text (``LIKE``, wildcards in the text are taken literally).
    text: str | None = None
    limit: int = 50


def search_jobs(session: Session, query: JobQuery) -> list[JobRun]:
    """Matching runs, newest first (by enqueue time, else start or finish time)."""
    stmt = select(JobRun)
    for column, value in (
        (JobRun.message_id, query.message_id),
        (JobRun.queue, query.queue),
        (JobRun.actor, query.actor),
        (JobRun.status, query.status),
        (JobRun.correlation_id, query.correlation_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    if query.text:
        stmt = stmt.where(JobRun.args_text.like(f"%{_escape_like(query.text)}%", escape="\\"))
    newest = func.coalesce(JobRun.enqueued_at, JobRun.started_at, JobRun.finished_at)
    stmt = stmt.order_by(newest.desc().nulls_last(), JobRun.message_id)
    return list(session.scalars(stmt.limit(max(1, min(query.limit, MAX_LIMIT)))))


def document_progress(session: Session, jobs: Iterable[JobRun]) -> dict[str, Document]:
    """The ``documents`` rows of the documents-queue jobs among ``jobs``, by message id (one query): the jobs
    pages show their progress and file status next to the run."""
    ids = [job.message_id for job in jobs if job.queue == DOCUMENTS_QUEUE]
    if not ids:
        return {}
    rows = session.scalars(select(Document).where(Document.message_id.in_(ids)))
    return {row.message_id: row for row in rows if row.message_id is not None}


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
