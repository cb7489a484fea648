"""Fixtures of the admin tests: the app on a real Redis database and PostgreSQL schema, logins, rows."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

ADMIN_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer pass 123"
ADMIN = ("admin", ADMIN_PASSWORD)
VIEWER = ("viewer", VIEWER_PASSWORD)
#: The admin answers loopback host names only (unless ADMIN_ALLOWED_HOSTS says otherwise).
BASE_URL = "http://127.0.0.1"

_ids = itertools.count(1)


@pytest.fixture
def no_auth(platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The platform environment without admin passwords (the local, loopback-only mode)."""
    from app.settings import reset_settings

    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_VIEWER_PASSWORD", raising=False)
    reset_settings()
    return platform_env


@pytest.fixture
def with_auth(platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The platform environment with an admin and a viewer password."""
    from app.settings import reset_settings

    monkeypatch.setenv("ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("ADMIN_VIEWER_PASSWORD", VIEWER_PASSWORD)
    reset_settings()
    return platform_env


def _client() -> Iterator[TestClient]:
    from app.admin import create_app

    with TestClient(create_app(session_secret="test-secret"), base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def client(no_auth: dict[str, str]) -> Iterator[TestClient]:
    """A client of the admin without passwords."""
    yield from _client()


@pytest.fixture
def auth_client(with_auth: dict[str, str]) -> Iterator[TestClient]:
    """A client of the admin with passwords set; it sends no credentials unless told."""
    yield from _client()


def csrf(client: TestClient, auth: tuple[str, str] | None = None) -> dict[str, str]:
    """The CSRF header for this client's session (GET /admin/api/csrf sets the session cookie)."""
    response = client.get("/admin/api/csrf", auth=auth)
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def log_in(client: TestClient, user: str, password: str, **form: str) -> Any:
    """Post the login form as a browser does: GET it first (its CSRF cookie), then send the token back."""
    page = client.get("/admin/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = {"user": user, "password": password, "csrf_token": token, **form}
    return client.post("/admin/login", data=data, follow_redirects=False)


def add_dead_letter(**fields: Any) -> int:
    """Insert a dead letter directly (as the archive middleware would) and return its id."""
    from app.db.models import DeadLetter
    from app.db.session import session_scope

    n = next(_ids)
    row: dict[str, Any] = {
        "message_id": uuid.uuid4().hex,
        "queue": "email",
        "actor": "send_welcome_email",
        "kwargs": {"user_id": n},
        "options": {"idempotency_key": f"welcome:{n}", "correlation_id": f"corr-{n}"},
        "reason": "failed",
        "exception_type": "PermanentError",
        "exception_message": f"user {n} not found",
        "traceback": "Traceback (most recent call last):\n  ...\nPermanentError: user not found",
        "fingerprint": "f" * 40,
        "attempts": 1,
        "correlation_id": f"corr-{n}",
        "idempotency_key": f"welcome:{n}",
        "failed_at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=n),
    }
    row.update(fields)
    with session_scope() as session:
        letter = DeadLetter(**row)
        session.add(letter)
        session.flush()
        return letter.id


def add_job_run(**fields: Any) -> str:
    from app.db.models import JobRun
    from app.db.session import session_scope

    now = dt.datetime.now(dt.UTC)
    row: dict[str, Any] = {
        "message_id": uuid.uuid4().hex,
        "queue": "email",
        "actor": "send_welcome_email",
        "status": "succeeded",
        "attempts": 1,
        "enqueued_at": now - dt.timedelta(minutes=5),
        "started_at": now - dt.timedelta(minutes=5),
        "finished_at": now - dt.timedelta(minutes=4),
        "duration_ms": 12.5,
        "correlation_id": None,
        "args_text": '{"user_id": 1}',
    }
    row.update(fields)
    with session_scope() as session:
        session.add(JobRun(**row))
    return str(row["message_id"])
