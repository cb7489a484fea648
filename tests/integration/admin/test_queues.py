"""The queue overview and the workers page, from real Redis keys and database rows."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from dramatiq import Message
from fastapi.testclient import TestClient

from app import enqueue
from app.transport.registry import WORKERS_KEY
from tests.integration.admin.conftest import VIEWER, add_dead_letter, add_job_run
from tests.support.redis_server import RedisServer, owned_redis  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration


def _heartbeat(redis_client: object, queue: str, host: str, pid: int) -> None:
    info = {"host": host, "pid": pid, "queues": [queue], "threads": 8, "started": time.time() - 120}
    key = f"jobs:heartbeat:{queue}:{host}:{pid}"
    redis_client.set(key, json.dumps(info), ex=30)  # type: ignore[attr-defined]
    redis_client.zadd(WORKERS_KEY, {key: time.time() + 30})  # type: ignore[attr-defined]


def test_queue_overview_counts_every_state(auth_client: TestClient, redis_client: object) -> None:
    # Given messages in Redis, dead letters and job history in the database, and one email worker
    now = dt.datetime.now(dt.UTC)
    for user_id in (1, 2, 3):
        enqueue.send("send_welcome_email", user_id=user_id)
    enqueue.send("send_welcome_email", user_id=9, delay=3600)
    add_dead_letter()
    add_dead_letter()
    add_dead_letter(status="discarded")
    add_dead_letter(queue="sync", actor="sync_entities")
    add_job_run(finished_at=now - dt.timedelta(minutes=10))
    add_job_run(finished_at=now - dt.timedelta(minutes=50), status="dead")
    add_job_run(finished_at=now - dt.timedelta(hours=2))
    add_job_run(queue="documents", actor="generate_report", finished_at=now - dt.timedelta(minutes=1))
    _heartbeat(redis_client, "email", "worker-a", 101)

    # When a viewer reads the API
    response = auth_client.get("/admin/api/queues", auth=VIEWER)

    # Then
    assert response.status_code == 200
    rows = {row["queue"]: row for row in response.json()}
    assert list(rows) == ["email", "documents", "sync"]
    email = rows["email"]
    assert (email["ready"], email["delayed"], email["in_progress"]) == (3, 1, 0)
    assert (email["dead"], email["dead_archived"], email["dead_in_xq"]) == (2, 2, 0)
    assert email["throughput_last_hour"] == 2 and email["failed_last_hour"] == 1
    assert email["workers"] == 1 and email["worker_hosts"] == ["worker-a:101"]
    assert 0 <= email["oldest_age_seconds"] < 60
    assert rows["documents"]["throughput_last_hour"] == 1 and rows["documents"]["workers"] == 0
    assert rows["sync"]["dead"] == 1 and rows["sync"]["ready"] == 0


def test_dead_messages_still_in_the_xq_count(auth_client: TestClient, redis_client: object) -> None:
    # Given a message Dramatiq dead-lettered while the archive was unreachable
    redis_client.zadd("dramatiq:sync.XQ", {"abc": time.time() * 1000})  # type: ignore[attr-defined]

    row = auth_client.get("/admin/api/queues/sync", auth=VIEWER).json()

    assert (row["dead"], row["dead_archived"], row["dead_in_xq"]) == (1, 0, 1)


def test_queues_page_renders(auth_client: TestClient) -> None:
    enqueue.send("send_welcome_email", user_id=1)
    add_dead_letter()

    response = auth_client.get("/admin/queues", auth=VIEWER)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<a href="/admin/queues/email">email</a>' in response.text
    assert 'href="/admin/dead-letters?queue=email">1</a>' in response.text
    for nav in ("Queues", "Dead letters", "Jobs", "Workers"):
        assert f">{nav}</a>" in response.text
    assert response.headers["x-frame-options"] == "DENY"


def test_queue_page_and_unknown_queue(auth_client: TestClient) -> None:
    add_dead_letter(exception_message="template missing")

    assert "template missing" in auth_client.get("/admin/queues/email", auth=VIEWER).text
    assert auth_client.get("/admin/queues/nope", auth=VIEWER).status_code == 404
    assert auth_client.get("/admin/api/queues/nope", auth=VIEWER).status_code == 404


def test_workers_from_heartbeat_keys(auth_client: TestClient, redis_client: object) -> None:
    # Given one process serving two queues (one key per queue) and another process
    _heartbeat(redis_client, "email", "host-1", 10)
    _heartbeat(redis_client, "sync", "host-1", 10)
    _heartbeat(redis_client, "documents", "host-2", 20)

    workers = auth_client.get("/admin/api/workers", auth=VIEWER).json()

    assert [(w["host"], w["pid"], w["queues"]) for w in workers] == [
        ("host-1", 10, ["email", "sync"]),
        ("host-2", 20, ["documents"]),
    ]
    assert workers[0]["threads"] == 8
    assert 100 < workers[0]["uptime_s"] < 200
    assert 0 < workers[0]["expires_in_s"] <= 30
    page = auth_client.get("/admin/workers", auth=VIEWER)
    assert page.status_code == 200 and "host-2" in page.text


def test_queue_stats_unavailable_is_503(auth_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import reset_settings

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings()

    response = auth_client.get("/admin/api/queues", auth=VIEWER)

    assert response.status_code == 503
    assert "Redis" in response.json()["detail"]


def test_queue_numbers_come_from_the_brokers_redis(
    client: TestClient,
    owned_redis: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.settings import reset_settings
    from app.transport import queue_stats
    from app.transport.publish import publish
    from app.transport.redis_broker import build_redis_broker

    # Given BROKER_URL on a Redis of its own, apart from REDIS_URL's, and two messages waiting there
    monkeypatch.setenv("BROKER_URL", owned_redis.url())
    reset_settings()
    broker = build_redis_broker(owned_redis.url())
    try:
        messages = [
            Message(
                queue_name="email",
                actor_name="send_welcome_email",
                args=(),
                kwargs={"user_id": u},
                options={},
            )
            for u in (1, 2)
        ]
        publish([(message, None) for message in messages], broker)
        # When the admin and the metrics read the queues
        email = client.get("/admin/api/queues/email").json()
        # Then they count them where Dramatiq keeps them (REDIS_URL's Redis holds no queue at all)
        assert email["ready"] == 2
        assert queue_stats(["email"])[0].ready == 2
    finally:
        broker.client.close()
