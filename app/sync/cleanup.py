"""``cleanup_data``: retention of the platform's bookkeeping and of long-archived notices.

Each kind of row has a retention setting (``RETENTION_*_DAYS``, docs/sync.md "Retention"). Rows are deleted in
batches of at most :data:`BATCH` per statement, each batch its own short transaction, so no table is locked
for long and a busy database interleaves its own writes between batches. Rows still in use are never touched:
running jobs' history, claimed (in-flight) emails, unpublished outbox entries, dead letters not yet requeued or
discarded, running sync runs, pending documents, and archived notices a user saved or wrote a proposal for.
The counts go to the log and to a ``sync_runs`` row of kind ``cleanup``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, exists, or_, select

from app import metrics
from app.constants import SYNC_QUEUE
from app.db.models import (
    DeadLetter,
    Document,
    EmailLog,
    JobRun,
    Opportunity,
    OutboxEntry,
    Proposal,
    SavedOpportunity,
    ScheduleRun,
    SyncPartition,
    SyncRejectedRecord,
    SyncRun,
)
from app.db.session import session_scope, transaction
from app.db.types import utcnow

logger = logging.getLogger(__name__)

#: Most rows one DELETE statement removes.
BATCH = 5_000


@dataclass(frozen=True)
class Rule:
    """What one retention setting removes: rows of ``table`` (by ``key``) matching ``where(cutoff)``."""

    name: str
    setting: str
    table: Table
    key: Any
    where: Callable[[dt.datetime], Any]
    #: Called with each batch's rows (key, extra) before they are deleted (documents: their files).
    before: Callable[[list[Any]], None] | None = None
    extra: Any = None


def _t(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _old_run(cutoff: dt.datetime) -> Any:
    return and_(SyncRun.finished_at.is_not(None), SyncRun.finished_at < cutoff)


def _remove_files(rows: list[Any]) -> None:
    from app.settings import get_settings

    root = Path(get_settings().storage_dir).resolve()
    for _key, path in rows:
        if not path:
            continue
        target = (root / path).resolve()
        if target.is_relative_to(root) and target.is_file():
            target.unlink(missing_ok=True)


def rules() -> list[Rule]:
    """The retention rules, in the order they run (children before the rows they point to)."""
    return [
        Rule(
            "job_runs",
            "retention_job_runs_days",
            _t(JobRun),
            JobRun.message_id,
            lambda c: and_(
                JobRun.finished_at.is_not(None), JobRun.finished_at < c, JobRun.status != "running"
            ),
        ),
        Rule(
            "email_log",
            "retention_email_log_days",
            _t(EmailLog),
            EmailLog.idempotency_key,
            lambda c: and_(EmailLog.status.in_(("sent", "skipped", "failed")), EmailLog.claimed_at < c),
        ),
        Rule(
            "outbox",
            "retention_outbox_days",
            _t(OutboxEntry),
            OutboxEntry.id,
            lambda c: and_(OutboxEntry.published_at.is_not(None), OutboxEntry.published_at < c),
        ),
        Rule(
            "dead_letters",
            "retention_dead_letters_days",
            _t(DeadLetter),
            DeadLetter.id,
            lambda c: or_(
                and_(DeadLetter.status == "requeued", DeadLetter.requeued_at < c),
                and_(DeadLetter.status == "discarded", DeadLetter.discarded_at < c),
            ),
        ),
        Rule(
            "schedule_runs",
            "retention_schedule_runs_days",
            _t(ScheduleRun),
            ScheduleRun.id,
            lambda c: ScheduleRun.created_at < c,
        ),
        Rule(
            "sync_rejected_records",
            "retention_sync_runs_days",
            _t(SyncRejectedRecord),
            SyncRejectedRecord.id,
            lambda c: SyncRejectedRecord.created_at < c,
        ),
        Rule(
            "sync_partitions",
            "retention_sync_runs_days",
            _t(SyncPartition),
            SyncPartition.id,
            lambda c: SyncPartition.run_id.in_(select(SyncRun.id).where(_old_run(c))),
        ),
        Rule("sync_runs", "retention_sync_runs_days", _t(SyncRun), SyncRun.id, _old_run),
        Rule(
            "documents",
            "retention_documents_days",
            _t(Document),
            Document.request_id,
            lambda c: and_(Document.status != "pending", Document.created_at < c),
            before=_remove_files,
            extra=Document.path,
        ),
        Rule(
            "archived_opportunities",
            "retention_archived_opportunities_days",
            _t(Opportunity),
            Opportunity.notice_id,
            lambda c: and_(
                Opportunity.archive_date.is_not(None),
                Opportunity.archive_date < c.date(),
                ~exists().where(SavedOpportunity.notice_id == Opportunity.notice_id),
                ~exists().where(Proposal.notice_id == Opportunity.notice_id),
            ),
        ),
    ]


def delete_in_batches(rule: Rule, cutoff: dt.datetime, *, batch: int = BATCH) -> int:
    """Delete every row ``rule`` matches at ``cutoff``, at most ``batch`` per statement; returns how many."""
    deleted = 0
    while True:
        with transaction() as connection:
            n = _one_batch(connection, rule, cutoff, batch)
        deleted += n
        if n < batch:
            return deleted


def _one_batch(connection: Connection, rule: Rule, cutoff: dt.datetime, batch: int) -> int:
    chosen = select(rule.key).where(rule.where(cutoff)).limit(batch)
    if rule.before is not None:
        rows = connection.execute(select(rule.key, rule.extra).where(rule.where(cutoff)).limit(batch)).all()
        if not rows:
            return 0
        rule.before([tuple(row) for row in rows])
        keys = [row[0] for row in rows]
        return int(connection.execute(delete(rule.table).where(rule.key.in_(keys))).rowcount)
    # A subquery on the same table: PostgreSQL and SQLite both accept it (MySQL would not).
    return int(connection.execute(delete(rule.table).where(rule.key.in_(chosen.scalar_subquery()))).rowcount)


def cleanup_data(*, now: dt.datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Apply every retention rule; returns rows deleted per rule (also logged and kept in ``sync_runs``)."""
    from app.settings import get_settings

    settings = get_settings()
    moment = now or utcnow()
    counts: dict[str, int] = {}
    for rule in rules():
        days = int(getattr(settings, rule.setting))
        counts[rule.name] = delete_in_batches(rule, moment - dt.timedelta(days=days), batch=batch)
    with session_scope() as session:
        session.add(
            SyncRun(
                kind="cleanup",
                status="succeeded",
                started_at=moment,
                finished_at=utcnow(),
                params={"deleted": counts},
            )
        )
    metrics.SYNC_OPERATIONS.labels(SYNC_QUEUE, "cleanup", "succeeded").inc()
    logger.info(
        "cleanup done", extra={"action": "cleanup_done", "deleted": counts, "total": sum(counts.values())}
    )
    return counts
