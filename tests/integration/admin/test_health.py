"""``/health``, ``/health/ready`` and ``/metrics``: unauthenticated, honest about Redis and the database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app import enqueue

pytestmark = pytest.mark.integration


def test_liveness(auth_client: TestClient) -> None:
    response = auth_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_redis_and_database_answer(auth_client: TestClient) -> None:
    response = auth_client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}


def test_not_ready_without_redis(auth_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import reset_settings

    # Given Redis pointed at a port nobody listens on
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings()

    response = auth_client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "ConnectionError"


def test_not_ready_without_database(auth_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.db.session import dispose_engines
    from app.settings import reset_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/test")
    reset_settings()
    dispose_engines()

    response = auth_client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "ok"
    assert response.json()["checks"]["database"] == "OperationalError"


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_expose_queue_sizes(auth_client: TestClient) -> None:
    # Given three welcome emails waiting in Redis (no worker runs)
    for user_id in (1, 2, 3):
        enqueue.send("send_welcome_email", user_id=user_id)
    enqueue.send("send_welcome_email", user_id=4, delay=600)

    # When Prometheus scrapes, without credentials
    response = auth_client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    sizes = _samples(response.text, "worker_queue_size")
    assert sizes[(("queue", "email"), ("state", "ready"))] == 3
    assert sizes[(("queue", "email"), ("state", "delayed"))] == 1
    assert sizes[(("queue", "sync"), ("state", "ready"))] == 0
    ages = _samples(response.text, "worker_queue_oldest_message_age_seconds")
    assert ages[(("queue", "email"),)] >= 0


def test_metrics_still_answer_without_redis(auth_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import reset_settings

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings()

    response = auth_client.get("/metrics")

    assert response.status_code == 200
    assert "worker_queue_size" not in {f.name for f in text_string_to_metric_families(response.text)}
