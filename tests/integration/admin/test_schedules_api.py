"""Schedules in the admin's JSON API: the table with its state, and pause/resume/run now with roles, CSRF and
the audit log, on real Redis and PostgreSQL (no scheduler process: the writes need no leader)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.models import AuditEvent
from app.db.session import session_scope
from tests.integration.admin.conftest import ADMIN, VIEWER, csrf

pytestmark = pytest.mark.integration

#: The public names of the schedule table (docs/architecture.md "Scheduler sidecar").
SCHEDULES = {"daily-reminders", "sam-sync", "entity-sync", "analytics-refresh", "cleanup", "weekly-reports"}
#: A schedule whose actor exists today (the email queue's daily dispatcher).
EMAIL_SCHEDULE = "daily-reminders"


def queued(client: Any, queue: str) -> list[dict[str, Any]]:
    """The messages of ``queue`` (ready and delayed) as Dramatiq stored them."""
    bodies = client.hvals(f"dramatiq:{queue}.msgs") + client.hvals(f"dramatiq:{queue}.DQ.msgs")
    return [json.loads(body) for body in bodies]


def audit_rows() -> list[tuple[str, str, str]]:
    with session_scope() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("schedule.%")))
        return [(e.who, e.action, e.target) for e in events]


def by_name(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/admin/api/schedules", auth=VIEWER)
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()}


def test_lists_the_six_schedules_with_their_next_fire(auth_client: TestClient) -> None:
    schedules = by_name(auth_client)

    assert set(schedules) == SCHEDULES
    for item in schedules.values():
        assert item["paused"] is False
        assert item["enabled"] is False or item["next_fire"] is not None, item
        assert item["target_actor"] and item["trigger"]
    assert schedules[EMAIL_SCHEDULE]["target_actor"] == "dispatch_daily_reminders"
    one = auth_client.get(f"/admin/api/schedules/{EMAIL_SCHEDULE}", auth=VIEWER).json()
    assert one["name"] == EMAIL_SCHEDULE
    assert auth_client.get("/admin/api/schedules/no-such", auth=VIEWER).status_code == 404


def test_pause_and_resume_are_stored_and_audited(auth_client: TestClient) -> None:
    headers = csrf(auth_client, ADMIN)

    paused = auth_client.post("/admin/api/schedules/cleanup/pause", headers=headers, auth=ADMIN)

    assert paused.status_code == 200, paused.text
    assert paused.json() == {"name": "cleanup", "paused": True}
    assert by_name(auth_client)["cleanup"]["paused"] is True
    assert by_name(auth_client)["sam-sync"]["paused"] is False

    resumed = auth_client.post("/admin/api/schedules/cleanup/resume", headers=headers, auth=ADMIN)

    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert by_name(auth_client)["cleanup"]["paused"] is False
    assert audit_rows() == [
        ("admin", "schedule.pause", "schedule:cleanup"),
        ("admin", "schedule.resume", "schedule:cleanup"),
    ]


def test_run_now_enqueues_one_message_per_call_with_distinct_keys(
    auth_client: TestClient, redis_client: Any
) -> None:
    headers = csrf(auth_client, ADMIN)

    first = auth_client.post(f"/admin/api/schedules/{EMAIL_SCHEDULE}/run", headers=headers, auth=ADMIN)
    second = auth_client.post(f"/admin/api/schedules/{EMAIL_SCHEDULE}/run", headers=headers, auth=ADMIN)

    assert first.status_code == 200 and second.status_code == 200, first.text + second.text
    fired = [first.json(), second.json()]
    assert [f["duplicate"] for f in fired] == [False, False]
    assert all(f["message_id"] for f in fired)
    assert fired[0]["key"] != fired[1]["key"]
    assert all(f["key"].startswith(f"schedule:{EMAIL_SCHEDULE}:") for f in fired)
    messages = [m for m in queued(redis_client, "email") if m["actor_name"] == "dispatch_daily_reminders"]
    assert sorted(m["message_id"] for m in messages) == sorted(f["message_id"] for f in fired)
    assert {m["options"].get("idempotency_key") for m in messages} == {f["key"] for f in fired}
    # Each fire is in schedule_runs, with who asked for it
    runs = auth_client.get("/admin/api/schedules/runs", params={"name": EMAIL_SCHEDULE}, auth=VIEWER).json()
    assert {r["message_id"] for r in runs} == {f["message_id"] for f in fired}
    assert {r["triggered_by"] for r in runs} == {"admin"}
    assert [a for a in audit_rows() if a[1] == "schedule.run"] == [
        ("admin", "schedule.run", f"schedule:{EMAIL_SCHEDULE}")
    ] * 2


def test_a_viewer_cannot_write_and_a_stranger_cannot_read(auth_client: TestClient, redis_client: Any) -> None:
    headers = csrf(auth_client, VIEWER)

    for action in ("pause", "resume", "run"):
        response = auth_client.post(f"/admin/api/schedules/cleanup/{action}", headers=headers, auth=VIEWER)
        assert response.status_code == 403, response.text

    assert by_name(auth_client)["cleanup"]["paused"] is False
    assert queued(redis_client, "email") == [] and queued(redis_client, "sync") == []
    assert audit_rows() == []
    # and without a login not even a read
    assert auth_client.get("/admin/api/schedules").status_code == 401
    assert auth_client.get("/admin/api/schedules/runs").status_code == 401


def test_a_write_needs_the_csrf_token(auth_client: TestClient) -> None:
    csrf(auth_client, ADMIN)  # a session exists, but the header is missing or wrong

    missing = auth_client.post("/admin/api/schedules/cleanup/pause", auth=ADMIN)
    wrong = auth_client.post(
        "/admin/api/schedules/cleanup/pause", headers={"X-CSRF-Token": "forged"}, auth=ADMIN
    )

    assert missing.status_code == 403 and wrong.status_code == 403
    assert by_name(auth_client)["cleanup"]["paused"] is False
    assert audit_rows() == []


def test_an_unknown_schedule_is_404_and_not_audited(auth_client: TestClient) -> None:
    headers = csrf(auth_client, ADMIN)

    for action in ("pause", "resume", "run"):
        response = auth_client.post(f"/admin/api/schedules/no-such/{action}", headers=headers, auth=ADMIN)
        assert response.status_code == 404, response.text
    assert (
        auth_client.get("/admin/api/schedules/runs", params={"name": "no-such"}, auth=ADMIN).status_code
        == 404
    )

    assert audit_rows() == []
