"""Opportunity sync runs as rows: the range a run covers, its partitions, and the fan-in that closes it.

A run is created with all its partitions (date windows of ``SYNC_PARTITION_DAYS``) and their messages in one
transaction: the messages go through the outbox (:mod:`app.outbox`), so a run never exists without its
messages, nor messages without their run. Each partition message stores its pages, then reports a terminal
state (:func:`finish_partition`). The report is the fan-in: in one transaction it moves the partition to
``succeeded``/``failed`` (only from a non-terminal state, so a duplicate delivery cannot count twice) and adds
one to ``sync_runs.partitions_done`` (an ``UPDATE … SET n = n + 1``: the row lock serialises concurrent
partitions). The partition whose report makes ``partitions_done`` reach ``partitions_total`` closes the run:
status by the success rule, totals summed from the partitions, and, in the same transaction, the messages that
follow (``refresh_analytics``, and the alert email when the run failed) staged in the outbox.

Statuses: a partition is ``pending`` → ``running`` → ``succeeded`` | ``failed``; a run is ``running`` →
``succeeded`` (every partition), ``partial`` (at least ``SYNC_MIN_SUCCESS_PCT`` %) or ``failed``. The
watermark of incremental runs is the latest ``posted_to`` of a ``succeeded`` run, so a window that failed is
fetched again by the next incremental run until a retry makes its run whole.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import enqueue
from app.db.models import AuditEvent, SyncPartition, SyncRun
from app.db.session import session_scope
from app.db.types import utcnow
from app.errors import InvalidJob, PermanentError
from app.sync.upsert import Counts

logger = logging.getLogger(__name__)

Mode = Literal["incremental", "range", "full"]
TERMINAL = ("succeeded", "failed")
#: Days an incremental run re-reads before its watermark (notices posted late in the day of the last run).
OVERLAP_DAYS = 1
#: The longest range one run covers (about ten years: each partition is one SAM.gov query anyway).
MAX_RUN_DAYS = 3660
#: Longest error text kept on a partition or run row.
ERROR_CHARS = 2000
#: The actor each partition message runs.
PARTITION_ACTOR = "sync_opportunity_partition"


@dataclass(frozen=True)
class Closed:
    """What :func:`finish_partition` reports when its partition was the last one of the run."""

    run_id: int
    status: str
    succeeded: int
    total: int


def windows(posted_from: dt.date, posted_to: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """``[posted_from, posted_to]`` cut into consecutive inclusive windows of at most ``days`` days."""
    if posted_to < posted_from:
        raise InvalidJob(f"posted_to {posted_to} is before posted_from {posted_from}")
    out = []
    start = posted_from
    while start <= posted_to:
        end = min(start + dt.timedelta(days=days - 1), posted_to)
        out.append((start, end))
        start = end + dt.timedelta(days=1)
    return out


def watermark(session: Session) -> dt.date | None:
    """The latest ``posted_to`` of a run that succeeded whole."""
    return session.scalar(
        select(func.max(SyncRun.posted_to)).where(
            SyncRun.kind == "opportunities", SyncRun.status == "succeeded"
        )
    )


def resolve_range(
    session: Session,
    *,
    full: bool,
    posted_from: dt.date | None,
    posted_to: dt.date | None,
    today: dt.date,
    full_days: int,
) -> tuple[Mode, dt.date, dt.date]:
    """The run's mode and inclusive range: a given range, ``full``, or incremental from the watermark."""
    to = posted_to or today
    if full:
        return "full", to - dt.timedelta(days=full_days - 1), to
    if posted_from is not None:
        return "range", posted_from, to
    mark = watermark(session)
    if mark is None:
        return "full", to - dt.timedelta(days=full_days - 1), to
    return "incremental", min(mark - dt.timedelta(days=OVERLAP_DAYS), to), to


def create_run(
    *,
    message_id: str | None,
    correlation_id: str | None,
    full: bool,
    posted_from: dt.date | None,
    posted_to: dt.date | None,
    window_days: int,
    full_days: int,
    today: dt.date,
) -> SyncRun:
    """The run and its partitions, with one partition message each staged in the outbox, in one transaction.

    A run is keyed by the message that asked for it: a redelivered ``sync_opportunities`` finds its run
    instead of starting a second one. The caller publishes the outbox (:func:`publish_outbox`).
    """
    with session_scope() as session:
        if message_id is not None:
            existing = session.scalar(select(SyncRun).where(SyncRun.message_id == message_id))
            if existing is not None:
                return existing
        mode, start, end = resolve_range(
            session, full=full, posted_from=posted_from, posted_to=posted_to, today=today, full_days=full_days
        )
        if (end - start).days + 1 > MAX_RUN_DAYS:
            # Partitions make long ranges possible, but a mistyped century is refused rather than fanned out.
            raise PermanentError(f"range {start}..{end} is longer than {MAX_RUN_DAYS} days")
        parts = windows(start, end, window_days)
        run = SyncRun(
            kind="opportunities",
            status="running",
            mode=mode,
            message_id=message_id,
            correlation_id=correlation_id,
            posted_from=start,
            posted_to=end,
            partitions_total=len(parts),
            params={"full": full, "window_days": window_days},
        )
        session.add(run)
        session.flush()
        for first, last in parts:
            session.add(SyncPartition(run_id=run.id, posted_from=first, posted_to=last, status="pending"))
        _stage_partitions(session, run, parts)
        return run


def _stage_partitions(session: Session, run: SyncRun, parts: list[tuple[dt.date, dt.date]]) -> None:
    jobs = [
        enqueue.job(
            PARTITION_ACTOR,
            correlation_id=run.correlation_id,
            sync_run_id=run.id,
            posted_from=first,
            posted_to=last,
        )
        for first, last in parts
    ]
    enqueue.many(jobs, session=session)


def publish_outbox() -> None:
    """Publish what this step staged now, instead of waiting for the relay (which remains the safety net)."""
    from app.outbox import relay_once

    try:
        with session_scope() as session:
            relay_once(session)
    except Exception:  # the relay publishes it later: the run and its messages are already durable
        logger.warning("outbox not published now; the relay will", exc_info=True)


def start_partition(run_id: int, posted_from: dt.date, message_id: str | None = None) -> SyncPartition | None:
    """Mark the partition running (one more attempt); None when this message finds it terminal (a duplicate).

    A *failed* partition reached by another message than the one that failed is a dead letter an operator
    requeued (``jobs dlq requeue``, the admin): it reopens like :func:`retry_failed` (off the run's counters, the
    run back to ``running``) and runs, so the run is judged again when it reports.
    """
    with session_scope() as session:
        part = session.scalar(
            select(SyncPartition)
            .where(SyncPartition.run_id == run_id, SyncPartition.posted_from == posted_from)
            .with_for_update()
        )
        if part is None:
            raise PermanentError(f"sync run {run_id} has no partition starting {posted_from}")
        requeued = part.status == "failed" and message_id is not None and message_id != part.message_id
        if part.status in TERMINAL and not requeued:
            return None
        if requeued:
            session.execute(
                update(SyncRun)
                .where(SyncRun.id == run_id)
                .values(
                    partitions_done=SyncRun.partitions_done - 1,
                    partitions_failed=SyncRun.partitions_failed - 1,
                    status="running",
                    finished_at=None,
                )
            )
            part.finished_at = None
            logger.info("failed sync partition requeued; its run reopens", extra={"run_id": run_id})
        part.status = "running"
        part.attempts += 1
        part.message_id = message_id or part.message_id
        part.started_at = part.started_at or utcnow()
        return part


def record_page(session: Session, partition_id: int, counts: Counts, *, requests: int, resume: Any) -> None:
    """Add one stored page to its partition, in the page's own transaction (so counts match what is stored)."""
    session.execute(
        update(SyncPartition)
        .where(SyncPartition.id == partition_id)
        .values(
            pages=SyncPartition.pages + 1,
            fetched=SyncPartition.fetched + counts.fetched,
            inserted=SyncPartition.inserted + counts.inserted,
            updated=SyncPartition.updated + counts.updated,
            unchanged=SyncPartition.unchanged + counts.unchanged,
            invalid=SyncPartition.invalid + counts.invalid,
            requests_spent=SyncPartition.requests_spent + requests,
            resume_offset=resume.offset if resume is not None else None,
            resume_mode=resume.mode if resume is not None else None,
        )
    )


def note_error(partition_id: int, error: str) -> None:
    """Keep the latest error of a partition that will be retried (the admin shows it while it waits)."""
    with session_scope() as session:
        session.execute(
            update(SyncPartition).where(SyncPartition.id == partition_id).values(error=error[:ERROR_CHARS])
        )


def finish_partition(
    run_id: int, partition_id: int, *, succeeded: bool, error: str | None = None, min_success_pct: int
) -> Closed | None:
    """The fan-in (module docstring). Returns :class:`Closed` when this report closed the run."""
    now = utcnow()
    status = "succeeded" if succeeded else "failed"
    with session_scope() as session:
        moved: Any = session.execute(
            update(SyncPartition)
            .where(SyncPartition.id == partition_id, SyncPartition.status.not_in(TERMINAL))
            .values(status=status, finished_at=now, error=None if succeeded else (error or "")[:ERROR_CHARS])
        )
        if not moved.rowcount:
            return None
        done, total = session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(
                partitions_done=SyncRun.partitions_done + 1,
                partitions_failed=SyncRun.partitions_failed + (0 if succeeded else 1),
            )
            .returning(SyncRun.partitions_done, SyncRun.partitions_total)
        ).one()
        if done < total:
            return None
        return _close(session, run_id, now, min_success_pct)


def _close(session: Session, run_id: int, now: dt.datetime, min_success_pct: int) -> Closed:
    run = session.get(SyncRun, run_id, populate_existing=True)
    assert run is not None
    sums = session.execute(
        select(
            func.coalesce(func.sum(SyncPartition.pages), 0),
            func.coalesce(func.sum(SyncPartition.fetched), 0),
            func.coalesce(func.sum(SyncPartition.inserted), 0),
            func.coalesce(func.sum(SyncPartition.updated), 0),
            func.coalesce(func.sum(SyncPartition.unchanged), 0),
            func.coalesce(func.sum(SyncPartition.invalid), 0),
            func.coalesce(func.sum(SyncPartition.requests_spent), 0),
            func.count().filter(SyncPartition.status == "succeeded"),
        ).where(SyncPartition.run_id == run_id)
    ).one()
    pages, fetched, inserted, updated_n, unchanged, invalid, requests, succeeded = (int(v) for v in sums)
    total = run.partitions_total
    if succeeded == total:
        status = "succeeded"
    elif succeeded * 100 >= min_success_pct * total:
        status = "partial"
    else:
        status = "failed"
    run.status = status
    run.finished_at = now
    run.pages, run.records_seen, run.inserted, run.updated = pages, fetched, inserted, updated_n
    run.unchanged, run.invalid, run.requests_spent = unchanged, invalid, requests
    run.error = None if status == "succeeded" else f"{total - succeeded} of {total} partitions failed"
    closed = Closed(run_id=run_id, status=status, succeeded=succeeded, total=total)
    _stage_followers(session, run, closed)
    return closed


def _stage_followers(session: Session, run: SyncRun, closed: Closed) -> None:
    """The messages a closed run sends, staged in the closing transaction: analytics, and the alert if failed."""
    jobs = [enqueue.job("refresh_analytics", correlation_id=run.correlation_id)]
    if closed.status == "failed":
        from app.sync.alerts import alert_job

        alert = alert_job(run, closed)
        if alert is not None:
            jobs.append(alert)
            run.alert_sent_at = utcnow()
    enqueue.many(jobs, session=session)


def retry_failed(run_id: int, *, who: str) -> list[int]:
    """Send the failed partitions of ``run_id`` again, alone; the run reopens until they report.

    Returns the ids of the partitions sent. Partitions that succeeded are not touched. Audited (``audit_log``,
    ``sync.retry``) in the same transaction.
    """
    with session_scope() as session:
        run = session.get(SyncRun, run_id, with_for_update=True)
        if run is None or run.kind != "opportunities":
            raise InvalidJob(f"no opportunities sync run {run_id}")
        failed = session.scalars(
            select(SyncPartition)
            .where(SyncPartition.run_id == run_id, SyncPartition.status == "failed")
            .order_by(SyncPartition.posted_from)
        ).all()
        if not failed:
            return []
        for part in failed:
            part.status = "pending"
            part.finished_at = None
        run.partitions_done -= len(failed)
        run.partitions_failed -= len(failed)
        run.status = "running"
        run.finished_at = None
        run.params = {**run.params, "retries": int(run.params.get("retries", 0)) + 1, "retried_by": who}
        _stage_partitions(session, run, [(p.posted_from, p.posted_to) for p in failed])
        ids = [p.id for p in failed]
        session.add(
            AuditEvent(
                who=who,
                action="sync.retry",
                target=f"sync_run:{run_id}",
                detail={"partitions": ids, "windows": [str(p.posted_from) for p in failed]},
            )
        )
    publish_outbox()
    logger.info("sync partitions retried", extra={"run_id": run_id, "partitions": len(ids), "by": who})
    return ids
