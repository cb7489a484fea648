"""Crashes: a SIGKILLed worker's job runs again, and a dead letter survives a database outage.

Both are promises of docs/architecture.md ("Delivery guarantees", "Message life cycle") that only hold across processes, so
they are tested with real worker processes, a real kill and the real ``jobs dlq sync`` command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from app.db.models import DeadLetter
from app.db.session import session_scope
from tests.support.helpers import ROOT, TEST_QUEUE, send_test_message, wait_for
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.e2e

#: Nothing listens on port 1: connections are refused at once, like a database that is down.
DOWN_DATABASE_URL = "postgresql://postgres@127.0.0.1:1/test"


def start_worker(env: dict[str, str], log_path: Path) -> WorkerProcess:
    return WorkerProcess(
        env, ["tests.support.actors"], [TEST_QUEUE], log_path=log_path, threads=1, shutdown_timeout_ms=5_000
    )


#: A SIGKILLed worker's messages are back and processed within this many seconds of the kill: the heartbeat
#: timeout (15 s) + one sweep interval (5 s) + a fetch, with room for a loaded machine (docs/dramatiq.md).
RECOVERY_BOUND_S = 30


@pytest.mark.timeout(120)
def test_job_of_a_sigkilled_worker_runs_again_within_30_seconds(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a worker in the middle of a job
    first = start_worker(platform_env, tmp_path / "first.log")
    first.wait_ready(redis_client)
    tag = uuid.uuid4().hex
    send_test_message("slow", tag=tag, seconds=3)
    wait_for(lambda: redis_client.get(f"test:started:{tag}"), timeout=20, what="job started")

    # When its whole process group is SIGKILLed (no shutdown hook runs) and a new worker starts
    first.signal(signal.SIGKILL)
    first.proc.wait(10)
    killed_at = time.monotonic()
    assert first.stop() == -signal.SIGKILL
    assert int(redis_client.get(f"test:finished:{tag}") or 0) == 0
    assert any(redis_client.scard(key) for key in redis_client.keys("dramatiq:__acks__.*")), "job is in limbo"
    redis_client.delete(f"test:started:{tag}")
    second = start_worker(platform_env, tmp_path / "second.log")
    try:
        second.wait_ready(redis_client)
        # Then the new worker's sweep returns the dead worker's message once its heartbeat expired, and it runs
        # to the end, within 30 s of the crash (the deadline is the guarantee, counted from the kill)
        wait_for(
            lambda: redis_client.get(f"test:finished:{tag}"),
            timeout=RECOVERY_BOUND_S - (time.monotonic() - killed_at),
            interval=0.2,
            what=f"the job re-run within {RECOVERY_BOUND_S} s of the kill",
        )
        recovered_after = time.monotonic() - killed_at
    finally:
        second.stop()
    assert int(redis_client.get(f"test:finished:{tag}") or 0) == 1
    assert int(redis_client.get(f"test:runs:{tag}") or 0) == 2  # the killed run and the re-run, no third
    print(f"crashed worker's job finished again {recovered_after:.0f} s after the kill")


def dlq_sync(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # The test actor's queue is not one of the platform's: name it, as an operator would for their own.
        [sys.executable, "-m", "app.cli", "dlq", "sync", "--queue", TEST_QUEUE],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dead_letter_survives_a_database_outage_and_dlq_sync_imports_it(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a worker whose database is down
    worker = start_worker({**platform_env, "DATABASE_URL": DOWN_DATABASE_URL}, tmp_path / "worker.log")
    worker.wait_ready(redis_client)
    tag = uuid.uuid4().hex
    try:
        # When a message dies
        message = send_test_message("always_permanent", tag=tag)
        wait_for(
            lambda: redis_client.zcard(f"dramatiq:{TEST_QUEUE}.XQ"), timeout=30, what="message in the XQ"
        )
        # Then it stays in Dramatiq's XQ (it ran once, was not retried, and is still alive in the worker)
        assert int(redis_client.get(f"test:count:{tag}") or 0) == 1
        assert worker.proc.poll() is None
    finally:
        worker.stop()
    redis_id = redis_client.zrange(f"dramatiq:{TEST_QUEUE}.XQ", 0, -1)[0]
    stored = redis_client.hget(f"dramatiq:{TEST_QUEUE}.XQ.msgs", redis_id)
    assert stored is not None and message.message_id.encode() in stored
    assert "archive unreachable" in worker.log_path.read_text()

    # When the database is back and an operator runs `jobs dlq sync`
    result = dlq_sync(platform_env)

    # Then the dead letter is in the archive with its error, and the XQ is empty
    assert result.returncode == 0, result.stderr
    assert "imported 1 dead letter(s)" in result.stdout
    with session_scope() as session:
        rows = list(session.scalars(select(DeadLetter).where(DeadLetter.message_id == message.message_id)))
        assert len(rows) == 1
        row = rows[0]
        assert row.exception_type == "PermanentError"
        assert row.exception_message == f"permanent failure for {tag}"
        assert row.reason == "permanent_error"
        assert row.traceback and "always_permanent" in row.traceback
        assert row.actor == "always_permanent" and row.queue == TEST_QUEUE and row.kwargs == {"tag": tag}
        assert row.attempts == 1 and row.status == "dead"
    assert redis_client.zcard(f"dramatiq:{TEST_QUEUE}.XQ") == 0
    # And a second sync finds nothing more to import
    assert "imported 0 dead letter(s)" in dlq_sync(platform_env).stdout
