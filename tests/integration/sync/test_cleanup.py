"""``cleanup_data`` removes exactly what the retention settings say, in batches, and keeps what is in use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db.models import (
    DeadLetter,
    Document,
    EmailLog,
    JobRun,
    Opportunity,
    OutboxEntry,
    SavedOpportunity,
    ScheduleRun,
    SyncPartition,
    SyncRejectedRecord,
    SyncRun,
    User,
)
from app.db.session import session_scope, transaction
from app.sync.cleanup import cleanup_data
from app.sync.upsert import upsert_opportunities
from tests.integration.sync.records import notice_id, opportunity

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def keys(model: Any, column: Any) -> set[Any]:
    with session_scope() as session:
        return set(session.scalars(select(column)))


def test_cleanup_removes_exactly_what_retention_says(sync_env: dict[str, str]) -> None:
    storage = Path(sync_env["STORAGE_DIR"])
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "old.pdf").write_bytes(b"%PDF old")
    (storage / "new.pdf").write_bytes(b"%PDF new")
    # Given rows on both sides of each default retention (job runs 30 d, emails 180 d, outbox 7 d, resolved
    # dead letters 30 d, schedule runs 90 d, sync runs 90 d, documents 30 d, archived notices 365 d)
    with session_scope() as session:
        for n in range(7):  # more than a batch of 3
            session.add(
                JobRun(
                    message_id=f"old-{n}", queue="email", actor="a", status="succeeded", finished_at=ago(31)
                )
            )
        session.add(
            JobRun(message_id="new", queue="email", actor="a", status="succeeded", finished_at=ago(29))
        )
        session.add(
            JobRun(message_id="running", queue="email", actor="a", status="running", started_at=ago(40))
        )
        session.add(EmailLog(idempotency_key="old", kind="welcome", status="sent", claimed_at=ago(181)))
        session.add(
            EmailLog(idempotency_key="claimed", kind="welcome", status="claimed", claimed_at=ago(400))
        )
        session.add(EmailLog(idempotency_key="new", kind="welcome", status="sent", claimed_at=ago(179)))
        session.add(OutboxEntry(message_id="old", queue="q", actor="a", payload="{}", published_at=ago(8)))
        session.add(
            OutboxEntry(message_id="unpublished", queue="q", actor="a", payload="{}", created_at=ago(30))
        )
        session.add(OutboxEntry(message_id="new", queue="q", actor="a", payload="{}", published_at=ago(6)))
        letter = {"queue": "q", "actor": "a", "reason": "failed", "exception_type": "E", "fingerprint": "f"}
        session.add(DeadLetter(message_id="old", status="discarded", discarded_at=ago(31), **letter))
        session.add(DeadLetter(message_id="requeued", status="requeued", requeued_at=ago(31), **letter))
        session.add(DeadLetter(message_id="dead", status="dead", failed_at=ago(300), **letter))
        session.add(DeadLetter(message_id="new", status="discarded", discarded_at=ago(29), **letter))
        session.add(ScheduleRun(name="old", fire_time=ago(91), status="enqueued", created_at=ago(91)))
        session.add(ScheduleRun(name="new", fire_time=ago(89), status="enqueued", created_at=ago(89)))
        old_run = SyncRun(kind="opportunities", status="succeeded", started_at=ago(92), finished_at=ago(91))
        new_run = SyncRun(kind="opportunities", status="succeeded", started_at=ago(10), finished_at=ago(10))
        running = SyncRun(kind="opportunities", status="running", started_at=ago(100))
        session.add_all([old_run, new_run, running])
        session.flush()
        for run in (old_run, new_run, running):
            session.add(
                SyncPartition(run_id=run.id, posted_from=dt.date(2026, 1, 1), posted_to=dt.date(2026, 1, 7))
            )
        session.add(SyncRejectedRecord(run_id=old_run.id, kind="opportunity", reason="x", created_at=ago(91)))
        session.add(SyncRejectedRecord(run_id=new_run.id, kind="opportunity", reason="x", created_at=ago(10)))
        session.add(
            Document(request_id="old", kind="report", status="ready", path="old.pdf", created_at=ago(31))
        )
        session.add(Document(request_id="pending", kind="report", status="pending", created_at=ago(31)))
        session.add(
            Document(request_id="new", kind="report", status="ready", path="new.pdf", created_at=ago(29))
        )
        run_ids = {"old": old_run.id, "new": new_run.id, "running": running.id}
    archived = {1: 400, 2: 400, 3: 300}  # notice -> days since its archive date
    with transaction() as connection:
        upsert_opportunities(
            connection,
            [
                opportunity(n, archiveDate=(NOW - dt.timedelta(days=d)).date().isoformat())
                for n, d in archived.items()
            ]
            + [opportunity(4, archiveDate=None)],
        )
    with session_scope() as session:
        user = User(email="saver@example.com")
        session.add(user)
        session.flush()
        session.add(SavedOpportunity(user_id=user.id, notice_id=notice_id(2)))

    # When cleanup runs, three rows a statement
    deleted = cleanup_data(now=NOW, batch=3)

    # Then exactly the old, finished rows are gone
    assert deleted == {
        "job_runs": 7,
        "email_log": 1,
        "outbox": 1,
        "dead_letters": 2,
        "schedule_runs": 1,
        "sync_rejected_records": 1,
        "sync_partitions": 1,
        "sync_runs": 1,
        "documents": 1,
        "archived_opportunities": 1,
    }
    assert keys(JobRun, JobRun.message_id) == {"new", "running"}
    assert keys(EmailLog, EmailLog.idempotency_key) == {"claimed", "new"}
    assert keys(OutboxEntry, OutboxEntry.message_id) == {"unpublished", "new"}
    assert keys(DeadLetter, DeadLetter.message_id) == {"dead", "new"}
    assert keys(ScheduleRun, ScheduleRun.name) == {"new"}
    with session_scope() as session:
        left_runs = set(session.scalars(select(SyncRun.id).where(SyncRun.kind == "opportunities")))
        partition_runs = set(session.scalars(select(SyncPartition.run_id)))
        cleanup_rows = session.scalars(select(SyncRun.params).where(SyncRun.kind == "cleanup")).all()
    assert left_runs == partition_runs == {run_ids["new"], run_ids["running"]}
    assert keys(Document, Document.request_id) == {"pending", "new"}
    assert not (storage / "old.pdf").exists() and (storage / "new.pdf").exists()
    assert keys(Opportunity, Opportunity.notice_id) == {notice_id(2), notice_id(3), notice_id(4)}
    assert cleanup_rows == [{"deleted": deleted}]
