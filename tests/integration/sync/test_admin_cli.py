"""The sync view of the admin (/admin/sync and /admin/api/sync/...) and ``jobs sync``: runs, partitions with
their counts and errors, the quota left, and the retry of failed partitions (admin role, CSRF, audited)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.cli import main
from app.db.models import AuditEvent, SyncPartition
from app.db.session import session_scope
from app.sync import runs
from app.sync.upsert import Counts
from tests.integration.admin.conftest import ADMIN, VIEWER, auth_client, csrf, with_auth

pytestmark = pytest.mark.integration

__all__ = ["auth_client", "with_auth"]


def failed_run() -> tuple[int, list[int]]:
    """A closed run of three partitions: the first succeeded with counts, the other two failed."""
    run = runs.create_run(
        message_id=None,
        correlation_id="corr-1",
        full=False,
        posted_from=dt.date(2026, 1, 1),
        posted_to=dt.date(2026, 1, 21),
        window_days=7,
        full_days=365,
        today=dt.date(2026, 2, 1),
    )
    runs.publish_outbox()
    with session_scope() as session:
        parts = session.scalars(
            select(SyncPartition).where(SyncPartition.run_id == run.id).order_by(SyncPartition.posted_from)
        ).all()
        ids = [p.id for p in parts]
        runs.record_page(session, ids[0], Counts(fetched=5, inserted=4, invalid=1), requests=2, resume=None)
    runs.finish_partition(run.id, ids[0], succeeded=True, min_success_pct=70)
    for part_id in ids[1:]:
        runs.finish_partition(
            run.id, part_id, succeeded=False, error="SamGovUnavailable: 503", min_success_pct=70
        )
    runs.publish_outbox()
    return run.id, ids


def queued_partitions(client: Any) -> list[dict[str, Any]]:
    bodies = [json.loads(b) for b in client.hvals("dramatiq:sync.msgs")]
    return [b for b in bodies if b["actor_name"] == "sync_opportunity_partition"]


def test_runs_partitions_quota_and_an_audited_retry(
    auth_client: TestClient, redis_client: redis.Redis
) -> None:
    run_id, ids = failed_run()
    redis_client.delete("dramatiq:sync.msgs")  # the first fan-out's messages

    overview = auth_client.get("/admin/api/sync", auth=VIEWER)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert body["quota"]["daily_quota"] == 1000 and body["quota"]["used_today"] == 0
    assert [(r["id"], r["status"], r["partitions_failed"]) for r in body["runs"]] == [(run_id, "failed", 2)]
    detail = auth_client.get(f"/admin/api/sync/runs/{run_id}", auth=VIEWER).json()
    assert [(p["status"], p["inserted"], p["invalid"], p["error"]) for p in detail["partitions"]] == [
        ("succeeded", 4, 1, None),
        ("failed", 0, 0, "SamGovUnavailable: 503"),
        ("failed", 0, 0, "SamGovUnavailable: 503"),
    ]
    page = auth_client.get(f"/admin/sync?run={run_id}", auth=VIEWER)
    assert page.status_code == 200 and "SamGovUnavailable: 503" in page.text and "2026-01-08" in page.text
    assert "data-sync-retry" not in page.text  # a viewer gets no retry button
    assert auth_client.get("/admin/sync?kind=", auth=VIEWER).status_code == 200  # the filter's "any"
    assert auth_client.get("/admin/api/sync?kind=entities", auth=VIEWER).json()["runs"] == []
    assert auth_client.get("/admin/api/sync?kind=bogus", auth=VIEWER).status_code == 422

    # A viewer may not retry; an admin needs the CSRF token
    assert auth_client.post(f"/admin/api/sync/runs/{run_id}/retry", auth=VIEWER).status_code == 403
    assert auth_client.post(f"/admin/api/sync/runs/{run_id}/retry", auth=ADMIN).status_code == 403
    retried = auth_client.post(
        f"/admin/api/sync/runs/{run_id}/retry", auth=ADMIN, headers=csrf(auth_client, ADMIN)
    )

    assert retried.status_code == 200, retried.text
    assert retried.json() == {"run_id": run_id, "retried": 2, "partition_ids": ids[1:]}
    sent = queued_partitions(redis_client)
    assert sorted(m["kwargs"]["posted_from"] for m in sent) == ["2026-01-08", "2026-01-15"]
    assert {m["options"]["correlation_id"] for m in sent} == {"corr-1"}
    with session_scope() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "sync.retry")).all()
    assert [(e.who, e.target, e.detail["partitions"]) for e in events] == [
        ("admin", f"sync_run:{run_id}", ids[1:])
    ]
    assert (
        auth_client.post(
            "/admin/api/sync/runs/999999/retry", auth=ADMIN, headers=csrf(auth_client, ADMIN)
        ).status_code
        == 404
    )


def test_jobs_sync_status_and_retry(with_auth: dict[str, str], redis_client: redis.Redis) -> None:
    run_id, _ = failed_run()
    cli = CliRunner()

    status = cli.invoke(main, ["sync", "status", str(run_id), "--json"])
    assert status.exit_code == 0, status.output
    assert [p["status"] for p in json.loads(status.output)["partitions"]] == ["succeeded", "failed", "failed"]

    retry = cli.invoke(main, ["sync", "retry", str(run_id)], env={"JOBS_OPERATOR": "ops"})
    assert retry.exit_code == 0, retry.output
    assert f"retried 2 partition(s) of run {run_id}" in retry.output
    again = cli.invoke(main, ["sync", "retry", str(run_id)])
    assert "retried 0 partition(s)" in again.output  # nothing failed any more: they are pending
    with session_scope() as session:
        statuses = session.scalars(
            select(SyncPartition.status)
            .where(SyncPartition.run_id == run_id)
            .order_by(SyncPartition.posted_from)
        ).all()
        who = session.scalars(select(AuditEvent.who).where(AuditEvent.action == "sync.retry")).all()
    assert statuses == ["succeeded", "pending", "pending"]
    assert who[0] == "cli:ops"
    missing = cli.invoke(main, ["sync", "retry", "424242"])
    assert missing.exit_code == 1
