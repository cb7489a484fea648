"""The admin's jobs pages show a documents job's progress next to its run."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from app.documents import records
from tests.integration.admin.conftest import add_job_run, client, no_auth  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


def test_jobs_and_queue_pages_show_document_progress(client: TestClient) -> None:  # noqa: F811
    now = dt.datetime.now(dt.UTC)
    running = add_job_run(enqueued_at=now, queue="documents", actor="export_data", status="running")
    other = add_job_run(enqueued_at=now, queue="email", actor="send_welcome_email")
    records.claim(
        records.Claim(
            request_id="admin-progress-1",
            kind="export",
            format="xlsx",
            user_id=None,
            path="exports/admin-progress-1.xlsx",
            params={},
            message_id=running,
        )
    )
    records.set_progress("admin-progress-1", 42)
    for url in ("/admin/jobs", "/admin/queues/documents"):
        page = client.get(url)
        assert page.status_code == 200, page.text
        assert '<progress max="100" value="42"></progress> 42% · running' in page.text, url
    assert other in client.get("/admin/jobs").text
    assert client.get("/admin/jobs").text.count("<progress") == 1  # the email job has none
    api = {row["message_id"]: row["document"] for row in client.get("/admin/api/jobs").json()}
    assert api == {
        running: {"request_id": "admin-progress-1", "status": "running", "progress": 42},
        other: None,
    }
