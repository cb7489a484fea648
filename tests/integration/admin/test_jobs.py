"""Searching the job history by id, actor, status, correlation id and argument text."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from tests.integration.admin.conftest import add_job_run

pytestmark = pytest.mark.integration


@pytest.fixture
def history(no_auth: dict[str, str]) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    return {
        "old": add_job_run(enqueued_at=now - dt.timedelta(hours=3), args_text='{"user_id": 42}'),
        "dead": add_job_run(
            enqueued_at=now - dt.timedelta(hours=2), status="dead", error="PermanentError: no user",
            args_text='{"user_id": 7}',
        ),
        "report": add_job_run(
            enqueued_at=now - dt.timedelta(hours=1), queue="documents", actor="generate_report",
            correlation_id="req-123", args_text='{"kind": "pipeline_100%_done"}',
        ),
        "new": add_job_run(enqueued_at=now, correlation_id="req-123", args_text='{"user_id": 43}'),
    }  # fmt: skip


def _ids(client: TestClient, **params: object) -> list[str]:
    response = client.get("/admin/api/jobs", params=params)
    assert response.status_code == 200, response.text
    return [row["message_id"] for row in response.json()]


def test_newest_first_with_limit(client: TestClient, history: dict[str, str]) -> None:
    assert _ids(client) == [history["new"], history["report"], history["dead"], history["old"]]
    assert _ids(client, limit=2) == [history["new"], history["report"]]


def test_filters(client: TestClient, history: dict[str, str]) -> None:
    assert _ids(client, message_id=history["dead"]) == [history["dead"]]
    assert _ids(client, actor="generate_report") == [history["report"]]
    assert _ids(client, status="dead") == [history["dead"]]
    assert _ids(client, correlation_id="req-123") == [history["new"], history["report"]]
    assert _ids(client, queue="documents") == [history["report"]]


def test_argument_text_is_a_literal_substring(client: TestClient, history: dict[str, str]) -> None:
    assert _ids(client, q='"user_id": 4') == [history["new"], history["old"]]
    assert _ids(client, q="100%_done") == [history["report"]]
    # LIKE wildcards in the text are literal characters, not patterns
    assert _ids(client, q="%") == [history["report"]]
    assert _ids(client, q="d_n") == []
    assert _ids(client, q="user%id") == []


def test_jobs_page(client: TestClient, history: dict[str, str]) -> None:
    response = client.get("/admin/jobs", params={"status": "dead"})

    assert response.status_code == 200
    assert history["dead"] in response.text and history["new"] not in response.text
    assert "PermanentError: no user" in response.text


def test_limit_is_bounded(client: TestClient, history: dict[str, str]) -> None:
    assert client.get("/admin/api/jobs", params={"limit": 100_000}).status_code == 422
