"""The ``jobs`` command as an operator runs it: separate processes, real Redis and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

from app.db.models import DeadLetter
from app.db.session import session_scope
from tests.support.helpers import jobs

pytestmark = pytest.mark.e2e


def test_a_bad_setting_fails_with_one_line_naming_it(platform_env: dict[str, str]) -> None:
    result = jobs({**platform_env, "ADMIN_PORT": "not-a-port", "SENDGRID_API_KEY": "SG.secret"}, "migrate")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "ADMIN_PORT" in result.stderr and "SG.secret" not in result.stderr


def test_migrate_creates_the_embedded_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "jobs.db"
    first = jobs({"DATABASE_URL": f"sqlite:///{database}"}, "migrate")
    again = jobs({"DATABASE_URL": f"sqlite:///{database}"}, "migrate")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    import sqlite3

    tables = {
        r[0] for r in sqlite3.connect(database).execute("select name from sqlite_master where type='table'")
    }
    assert {
        "dead_letters",
        "job_runs",
        "email_log",
        "schedule_runs",
        "outbox",
        "documents",
        "sync_runs",
    } <= tables
    assert {"users", "opportunities", "saved_opportunities", "proposals", "entities"} <= tables


def test_enqueue_validates_and_sends(platform_env: dict[str, str], redis_client: redis.Redis) -> None:
    ok = jobs(platform_env, "enqueue", "send_welcome_email", "--arg", "user_id=42")
    assert ok.returncode == 0, ok.stderr
    ref = json.loads(ok.stdout)
    assert ref["queue"] == "email" and ref["actor"] == "send_welcome_email"
    assert redis_client.hget("dramatiq:email.msgs", redis_client.lindex("dramatiq:email", 0)) is not None
    bad = jobs(platform_env, "enqueue", "send_welcome_email", "--arg", "user_id=-1")
    assert bad.returncode == 1 and "user_id" in bad.stderr
    assert redis_client.llen("dramatiq:email") == 1


def add_dead_letter(actor: str = "send_welcome_email", **fields: object) -> int:
    with session_scope() as session:
        row = DeadLetter(
            message_id=str(uuid.uuid4()), queue="email", actor=actor, kwargs={"user_id": 7},
            options={"idempotency_key": "welcome:7", "correlation_id": "req-1", "retries": 5},
            reason="retries_exhausted", exception_type="RetryableError", exception_message="SendGrid 503",
            traceback="Traceback ...\nRetryableError: SendGrid 503", fingerprint="f" * 40, attempts=6,
            **fields,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def test_dlq_list_show_requeue_discard(platform_env: dict[str, str], redis_client: redis.Redis) -> None:
    first, second = add_dead_letter(), add_dead_letter()

    listed = jobs(platform_env, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {json.loads(line)["id"] for line in listed.stdout.splitlines()} == {first, second}

    shown = jobs(platform_env, "dlq", "show", str(first))
    assert "SendGrid 503" in shown.stdout and "Traceback" in shown.stdout

    requeued = jobs(platform_env, "dlq", "requeue", str(first))
    assert requeued.returncode == 0, requeued.stderr
    (body,) = [
        redis_client.hget("dramatiq:email.msgs", i) for i in redis_client.lrange("dramatiq:email", 0, -1)
    ]
    message = json.loads(body or b"{}")
    assert message["kwargs"] == {"user_id": 7}
    assert message["options"]["idempotency_key"] == "welcome:7"
    assert "retries" not in message["options"]

    discarded = jobs(platform_env, "dlq", "discard", "--all", "--actor", "send_welcome_email")
    assert discarded.returncode == 0, discarded.stderr
    with session_scope() as session:
        rows = {row.id: row for row in session.query(DeadLetter)}
    assert rows[first].status == "requeued" and rows[first].requeued_by == "cli:alice"
    assert rows[second].status == "discarded" and rows[second].discarded_by == "cli:alice"

    refused = jobs(platform_env, "dlq", "requeue")
    assert refused.returncode == 2 and "--all" in refused.stderr


def test_dlq_sync_imports_what_the_xq_holds(platform_env: dict[str, str], redis_client: redis.Redis) -> None:
    from dramatiq import Message

    message = Message(
        queue_name="email", actor_name="send_welcome_email", args=(), kwargs={"user_id": 9},
        options={"dead_reason": "retries_exhausted", "dead_exception_type": "RetryableError", "retries": 5},
    )  # fmt: skip
    redis_client.zadd("dramatiq:email.XQ", {"r-1": 1})
    redis_client.hset("dramatiq:email.XQ.msgs", "r-1", message.encode())
    result = jobs(platform_env, "dlq", "sync")
    assert result.returncode == 0 and "imported 1" in result.stdout, result.stderr
    with session_scope() as session:
        (row,) = session.query(DeadLetter).all()
    assert (row.message_id, row.reason, row.exception_type, row.attempts) == (
        message.message_id, "retries_exhausted", "RetryableError", 6,
    )  # fmt: skip
    assert redis_client.zcard("dramatiq:email.XQ") == 0
