"""One fire of one schedule, claimed durably before anything is sent.

The claim is the ``schedule_runs`` row, unique on (name, fire time), inserted before the message is published.
Whoever inserts it sends the message; anyone else finds the row and sends nothing. That is what makes a fire
happen once whatever the leader lock says: two leaders after a split brain, a restart, clock skew between
replicas (they compute the same fire times from the same trigger) or a Redis that lost the lock all meet the
same row in PostgreSQL. The message carries the key ``schedule:<name>:<fire time>`` as its idempotency key too,
so a re-publish of a fire (after a crash between publish and the row's update) is skipped by the worker once
the first copy has finished.

Statuses: ``claimed`` (row written, message not confirmed yet), ``enqueued``, ``manual`` (a run-now that was
enqueued), ``skipped`` (target actor not in the catalogue yet), ``missed`` (too late, or coalesced into a later
fire), ``failed`` (arguments refused, or the broker unreachable: the leader retries those inside the grace time).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from dramatiq.errors import DramatiqError
from sqlalchemy import Connection, Table, select, update

from app import enqueue, metrics
from app.db.dialect import insert_for
from app.db.models import ScheduleRun
from app.db.session import transaction
from app.errors import InvalidJob
from app.jobs import SPECS
from app.scheduler.clock import Clock, SystemClock
from app.scheduler.config import ResolvedSchedule
from app.scheduler.state import FireResult

logger = logging.getLogger(__name__)

#: Errors of publishing that mean "the broker is unreachable right now": the fire is marked failed, retried.
PUBLISH_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, DramatiqError, OSError)
#: Reason prefix of a fire whose publish failed; the leader retries such rows while inside the grace time.
PUBLISH_FAILED = "enqueue failed"
#: A ``claimed`` row older than this was left by a process that died between its claim and its publish.
STALE_CLAIM = dt.timedelta(seconds=30)


def replica_id() -> str:
    """This process as ``schedule_runs.replica`` and the leader gauge name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fire_key(name: str, fire_time: dt.datetime) -> str:
    """``schedule:cleanup:2026-12-06T02:00:00Z``: the idempotency key of one fire."""
    moment = fire_time.astimezone(dt.UTC)
    stamp = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return f"schedule:{name}:{stamp.replace('+00:00', 'Z')}"


def fire(
    schedule: ResolvedSchedule,
    fire_time: dt.datetime,
    *,
    now: dt.datetime,
    replica: str,
    manual_by: str | None = None,
    clock: Clock | None = None,
) -> FireResult:
    """Claim the fire at ``fire_time`` and enqueue its job; a fire someone else claimed sends nothing.

    ``manual_by`` marks an operator's run-now (status ``manual``, ignored by the leader's catch-up).
    """
    name, key = schedule.name, fire_key(schedule.name, fire_time)
    base: dict[str, Any] = {
        "name": name,
        "fire_time": fire_time,
        "replica": replica,
        "manual": manual_by is not None,
        "triggered_by": manual_by or "schedule",
        "created_at": now,
    }
    if schedule.actor not in SPECS:
        reason = f"actor {schedule.actor} is not in the job catalogue yet"
        return _final(base, key, "skipped", reason)
    try:
        prepared = enqueue.job(schedule.actor, idempotency_key=key, **schedule.arguments(fire_time))
    except InvalidJob as err:
        return _final(base, key, "failed", f"arguments refused: {err}")
    with transaction() as conn:
        if not _claim(conn, [{**base, "status": "claimed", "message_id": prepared.ref.message_id}]):
            return FireResult(name, fire_time, "claimed", key=key, duplicate=True)
    success = "manual" if manual_by else "enqueued"
    return _publish(schedule, fire_time, prepared, key, success=success, clock=clock)


def record_missed(
    schedule: ResolvedSchedule,
    fire_times: Sequence[dt.datetime],
    *,
    reason: str,
    now: dt.datetime,
    replica: str,
) -> int:
    """Record fires that will not run; returns how many were new (a fire someone did run stays as it is)."""
    if not fire_times:
        return 0
    rows = [
        {
            "name": schedule.name,
            "fire_time": moment,
            "status": "missed",
            "reason": reason,
            "replica": replica,
            "manual": False,
            "triggered_by": "schedule",
            "created_at": now,
        }
        for moment in fire_times
    ]
    with transaction() as conn:
        recorded = _claim(conn, rows)
    if recorded:
        metrics.SCHEDULE_FIRES.labels(schedule.name, "missed").inc(recorded)
        logger.warning(
            "schedule fires missed",
            extra={
                "action": "schedule_missed",
                "schedule": schedule.name,
                "count": recorded,
                "reason": reason,
            },
        )
    return recorded


def retry_unsent(
    schedules: Iterable[ResolvedSchedule], *, now: dt.datetime, replica: str, clock: Clock | None = None
) -> int:
    """Publish again the fires whose publish failed, or whose claimer died before publishing, inside their grace.

    Each retry takes the row over with a conditional update first, so two leaders do not both retry it.
    Returns how many were enqueued.
    """
    done = 0
    for schedule in schedules:
        since = now - dt.timedelta(seconds=schedule.misfire_grace_s)
        with transaction() as conn:
            rows = conn.execute(
                select(
                    ScheduleRun.id,
                    ScheduleRun.fire_time,
                    ScheduleRun.status,
                    ScheduleRun.message_id,
                    ScheduleRun.manual,
                ).where(
                    ScheduleRun.name == schedule.name,
                    ScheduleRun.fire_time >= since,
                    ((ScheduleRun.status == "failed") & ScheduleRun.reason.startswith(PUBLISH_FAILED))
                    | ((ScheduleRun.status == "claimed") & (ScheduleRun.created_at < now - STALE_CLAIM)),
                )
            ).all()
        for row in rows:
            try:
                prepared = enqueue.job(
                    schedule.actor,
                    idempotency_key=fire_key(schedule.name, row.fire_time),
                    **schedule.arguments(row.fire_time),
                )
            except InvalidJob:
                continue  # its arguments were fine when claimed; a changed schema is not this retry's business
            with transaction() as conn:
                taken = conn.execute(
                    update(ScheduleRun)
                    .where(
                        ScheduleRun.id == row.id,
                        ScheduleRun.status == row.status,
                        ScheduleRun.message_id == row.message_id,
                    )
                    .values(
                        status="claimed", message_id=prepared.ref.message_id, replica=replica, created_at=now
                    )
                    .returning(ScheduleRun.id)
                ).first()
            if taken is None:
                continue
            key = fire_key(schedule.name, row.fire_time)
            success = "manual" if row.manual else "enqueued"
            result = _publish(schedule, row.fire_time, prepared, key, success=success, clock=clock)
            done += result.status in ("enqueued", "manual")
    return done


def _publish(
    schedule: ResolvedSchedule,
    fire_time: dt.datetime,
    prepared: enqueue.PreparedJob,
    key: str,
    *,
    success: str,
    clock: Clock | None,
) -> FireResult:
    name, message_id = schedule.name, prepared.ref.message_id
    try:
        enqueue.many([prepared])
    except PUBLISH_ERRORS as err:
        reason = f"{PUBLISH_FAILED}: {type(err).__name__}: {err}"[:500]
        _update(name, fire_time, message_id, status="failed", reason=reason)
        metrics.SCHEDULE_FIRES.labels(name, "failed").inc()
        logger.error(
            "schedule fire not enqueued",
            extra={"action": "schedule_failed", "schedule": name, "key": key, "error": type(err).__name__},
        )
        return FireResult(name, fire_time, "failed", message_id, reason, key)
    enqueued_at = (clock or SystemClock()).now()
    lag = max(0.0, (enqueued_at - fire_time).total_seconds())
    _update(name, fire_time, message_id, status=success, enqueued_at=enqueued_at, lag_seconds=lag)
    metrics.SCHEDULE_FIRES.labels(name, success).inc()
    metrics.SCHEDULE_FIRE_LAG.labels(name).observe(lag)
    metrics.SCHEDULE_LAST_RUN.labels(name).set(fire_time.timestamp())
    logger.info(
        "schedule fired",
        extra={
            "action": "schedule_fired",
            "schedule": name,
            "key": key,
            "message_id": message_id,
            "lag_s": round(lag, 3),
        },
    )
    return FireResult(name, fire_time, success, message_id, None, key)


def _final(base: dict[str, Any], key: str, status: str, reason: str) -> FireResult:
    """A fire that ends at its claim (skipped, or refused arguments): the row is its whole record."""
    with transaction() as conn:
        claimed = _claim(conn, [{**base, "status": status, "reason": reason}])
    if claimed:
        metrics.SCHEDULE_FIRES.labels(base["name"], status).inc()
        logger.warning(
            "schedule fire not sent",
            extra={"action": f"schedule_{status}", "schedule": base["name"], "key": key, "reason": reason},
        )
    return FireResult(base["name"], base["fire_time"], status, None, reason, key, duplicate=not claimed)


def _update(name: str, fire_time: dt.datetime, message_id: str, **values: Any) -> None:
    with transaction() as conn:
        conn.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.name == name,
                ScheduleRun.fire_time == fire_time,
                ScheduleRun.message_id == message_id,
            )
            .values(**values)
        )


def _claim(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping those whose (name, fire time) exists; returns how many were inserted.

    Counted with RETURNING: the driver's rowcount of ``INSERT ... ON CONFLICT DO NOTHING`` is -1 here, which
    would read as a claim won.
    """
    table: Table = ScheduleRun.__table__  # type: ignore[assignment]
    statement = (
        insert_for(conn, table)
        .on_conflict_do_nothing(index_elements=["name", "fire_time"])
        .returning(table.c.id)
    )
    return sum(len(conn.execute(statement, row).all()) for row in rows)
