"""A real worker process on real Redis and PostgreSQL: retries, dead letters, poison, requeue, shutdown."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from dramatiq import Message
from sqlalchemy import select

from app.constants import DEAD_WORKER_SWEEP_INTERVAL_S, DRAMATIQ_HEARTBEAT_TIMEOUT_MS
from app.db.models import DeadLetter, JobRun
from app.db.session import session_scope
from app.dead_letters import DeadLetterFilter, requeue
from app.history import HistoryWriter
from tests.support.helpers import TEST_QUEUE, send_test_message, wait_for
from tests.support.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> Iterator[WorkerProcess]:
    with running_worker(platform_env, redis_client, tmp_path / "worker.log") as process:
        yield process


def dead_letters() -> list[DeadLetter]:
    with session_scope() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def dead_letter_for(message_id: str) -> DeadLetter | None:
    return next((row for row in dead_letters() if row.message_id == message_id), None)


def test_retryable_error_is_retried_with_backoff_then_dead_lettered_with_traceback(
    worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    # Given an actor that always fails with a RetryableError, max_retries=2, backoff 1 s x3 (+10 % jitter)
    tag = uuid.uuid4().hex
    message = send_test_message("always_retryable", tag=tag)

    # When the worker has given up on it
    row = wait_for(lambda: dead_letter_for(message.message_id), timeout=30, what="dead letter row")

    # Then it ran three times, with growing delays in between
    times = [float(t) for t in redis_client.lrange(f"test:times:{tag}", 0, -1)]
    assert len(times) == 3, times
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    # A gap is the backoff (1 s, then 3 s, +10 %) plus up to two idle polls of Dramatiq's consumers (each backs
    # off up to its worker timeout, 1 s): the delay queue's, which moves the due message back, and the queue's.
    idle_polls = 2 * 1.0 + 0.5
    assert 1.0 <= first_gap < 1.1 + idle_polls, first_gap
    assert 3.0 <= second_gap < 3.3 + idle_polls, second_gap
    assert second_gap > first_gap
    # And the archive holds the story: reason, attempts, traceback with the raising frame, arguments
    assert isinstance(row, DeadLetter)
    assert row.reason == "retries_exhausted"
    assert row.attempts == 3
    assert row.exception_type == "RetryableError"
    assert "transient failure" in row.exception_message
    assert row.traceback and "always_retryable" in row.traceback
    assert row.kwargs == {"tag": tag}
    assert row.actor == "always_retryable" and row.queue == TEST_QUEUE
    assert row.status == "dead"
    # And Dramatiq's XQ copy is gone: the archive is the source of truth
    assert redis_client.zcard(f"dramatiq:{TEST_QUEUE}.XQ") == 0


def test_permanent_error_is_dead_lettered_at_once(worker: WorkerProcess, redis_client: redis.Redis) -> None:
    tag = uuid.uuid4().hex
    message = send_test_message("always_permanent", tag=tag)
    row = wait_for(lambda: dead_letter_for(message.message_id), timeout=20, what="dead letter row")
    assert isinstance(row, DeadLetter)
    assert row.reason == "permanent_error" and row.attempts == 1
    assert int(redis_client.get(f"test:count:{tag}") or 0) == 1


def test_rate_limited_does_not_spend_attempts(worker: WorkerProcess, redis_client: redis.Redis) -> None:
    # Given max_retries=1 and an actor rate limited three times in a row
    tag = uuid.uuid4().hex
    message = send_test_message("rate_limited_then_ok", tag=tag, times=3)
    # Then it still succeeds on the fourth run: waiting for a rate limit is not a failed attempt
    wait_for(lambda: redis_client.get(f"test:done:{tag}"), timeout=20, what="success after rate limits")
    assert int(redis_client.get(f"test:count:{tag}") or 0) == 4
    assert dead_letter_for(message.message_id) is None


def test_garbage_and_unknown_actor_are_dead_lettered_while_the_worker_goes_on(
    worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    # Given a payload that is not a message at all, a JSON object without fields, and an unknown actor
    for redis_id, body in (("garbage-1", b"\x00\xffnot json"), ("fieldless-1", b'{"hello": "world"}')):
        redis_client.hset(f"dramatiq:{TEST_QUEUE}.msgs", redis_id, body)
        redis_client.rpush(f"dramatiq:{TEST_QUEUE}", redis_id)
    unknown = send_test_message("no_such_actor", x=1)
    # When a normal message follows them
    tag = uuid.uuid4().hex
    send_test_message("child", tag=tag)
    # Then the normal message runs (the worker kept going) ...
    wait_for(lambda: redis_client.get(f"test:done:{tag}"), timeout=20, what="the healthy message")
    # ... and each bad one is archived with its reason
    rows = wait_for(
        lambda: len(dead_letters()) >= 3 and dead_letters(), timeout=20, what="three dead letters"
    )
    assert isinstance(rows, list)
    by_reason = {row.reason: row for row in rows}
    assert by_reason["unknown_actor"].message_id == unknown.message_id
    assert by_reason["unknown_actor"].exception_type == "ActorNotFound"
    undecodable = [row for row in rows if row.reason == "undecodable"]
    assert {row.message_id for row in undecodable} == {"undecodable:garbage-1", "undecodable:fieldless-1"}
    assert any("hello" in (row.raw_payload or "") for row in undecodable)
    # And nothing is left in the worker's acks set to loop on later
    assert not [k for k in redis_client.keys("dramatiq:__acks__.*") if redis_client.scard(k)]
    assert worker.proc.poll() is None


def test_requeued_dead_letter_runs_again(worker: WorkerProcess, redis_client: redis.Redis) -> None:
    tag = uuid.uuid4().hex
    message = enqueue_with_key(tag)
    row = wait_for(lambda: dead_letter_for(message.message_id), timeout=20, what="dead letter")
    assert isinstance(row, DeadLetter)
    # When the cause is fixed and an operator requeues it
    redis_client.set(f"test:flag:{tag}", "1")
    with session_scope() as session:
        pairs = requeue(session, DeadLetterFilter(ids=(row.id,)), who="test-operator")
    # Then a fresh copy runs to success, with the same idempotency key and a reset retry count
    wait_for(lambda: redis_client.get(f"test:done:{tag}"), timeout=20, what="requeued run")
    ((dead_id, new_message_id),) = pairs
    assert dead_id == row.id and new_message_id != message.message_id
    with session_scope() as session:
        stored = session.get(DeadLetter, row.id)
        assert stored is not None
        assert stored.status == "requeued" and stored.requeued_by == "test-operator"
        assert stored.requeued_message_id == new_message_id
    assert redis_client.get(f"jobs:done:key-{tag}") is not None


def enqueue_with_key(tag: str) -> Message:
    return send_test_message("fail_until_flag", options={"idempotency_key": f"key-{tag}"}, tag=tag)


def test_correlation_id_of_parent_reaches_child_log_lines(
    worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    tag = uuid.uuid4().hex
    correlation_id = f"req-{tag[:8]}"
    send_test_message("parent", options={"correlation_id": correlation_id}, tag=tag)
    wait_for(lambda: redis_client.get(f"test:done:{tag}"), timeout=20, what="child ran")

    def child_line() -> dict[str, object] | None:
        for line in worker.output().splitlines():
            if line.startswith("{") and '"child running"' in line and tag in line:
                return dict(json.loads(line))
        return None

    record = wait_for(child_line, timeout=10, what="child log line")
    assert isinstance(record, dict)
    assert record["correlation_id"] == correlation_id
    assert record["actor"] == "child" and record["queue"] == TEST_QUEUE


def test_job_history_is_recorded(worker: WorkerProcess, redis_client: redis.Redis) -> None:
    tag = uuid.uuid4().hex
    message = send_test_message("child", tag=tag)

    def run_row() -> JobRun | None:
        with session_scope() as session:
            row = session.get(JobRun, message.message_id)
            return row if row is not None and row.status == "succeeded" else None

    row = wait_for(run_row, timeout=20, what="job_runs row")
    assert isinstance(row, JobRun)
    assert row.actor == "child" and row.attempts == 1 and row.duration_ms is not None
    assert tag in row.args_text
    assert row.started_at is not None and row.finished_at is not None and row.finished_at >= row.started_at


def start_slow_job(
    env: dict[str, str], client: redis.Redis, tmp_path: Path, *, seconds: float, shutdown_timeout_ms: int
) -> tuple[WorkerProcess, str, Message]:
    """A one-thread worker already running a ``slow`` job of ``seconds``."""
    process = WorkerProcess(
        env, ["tests.support.actors"], [TEST_QUEUE], log_path=tmp_path / "w.log", threads=1,
        shutdown_timeout_ms=shutdown_timeout_ms,
    )  # fmt: skip
    process.wait_ready(client)
    tag = uuid.uuid4().hex
    message = send_test_message("slow", tag=tag, seconds=seconds)
    wait_for(lambda: client.get(f"test:started:{tag}"), what="job started")
    return process, tag, message


def test_sigterm_during_a_long_job_finishes_it(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    process, tag, _ = start_slow_job(
        platform_env, redis_client, tmp_path, seconds=2, shutdown_timeout_ms=10_000
    )
    # When the worker is told to stop mid-job, within its shutdown timeout
    code = process.stop()  # one SIGTERM to the master, as Kubernetes or `jobs worker` sends it
    # Then the job finished before the process exited, exactly once, and nothing is left behind
    assert int(redis_client.get(f"test:finished:{tag}") or 0) == 1
    assert code == 0
    assert redis_client.llen(f"dramatiq:{TEST_QUEUE}") == 0


def test_sigterm_past_the_shutdown_timeout_requeues_the_job(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    process, tag, message = start_slow_job(
        platform_env, redis_client, tmp_path, seconds=30, shutdown_timeout_ms=1_000
    )
    started = time.monotonic()
    process.stop()
    # A correctness bound, not a speed test: the stop honours the 1 s shutdown timeout, not the 30 s job
    assert time.monotonic() - started < 20
    # Then the unfinished message is back on its queue, not lost
    assert int(redis_client.get(f"test:finished:{tag}") or 0) == 0
    ids = [i.decode() for i in redis_client.lrange(f"dramatiq:{TEST_QUEUE}", 0, -1)]
    bodies = [redis_client.hget(f"dramatiq:{TEST_QUEUE}.msgs", i) for i in ids]
    assert any(b and message.message_id in b.decode() for b in bodies)


def test_enqueue_helper_inside_a_worker_uses_the_worker_broker(
    worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    send_test_message("enqueue_welcome", user_id=7)
    wait_for(
        lambda: redis_client.llen("dramatiq:email"), timeout=20, what="welcome message on the email queue"
    )
    body = redis_client.hget("dramatiq:email.msgs", redis_client.lindex("dramatiq:email", 0))
    assert body is not None
    decoded = json.loads(body)
    assert decoded["actor_name"] == "send_welcome_email" and decoded["kwargs"] == {"user_id": 7}
    assert decoded["options"]["correlation_id"]


def test_history_writer_flushes_batches(platform_env: dict[str, str]) -> None:
    from app.history import JobEvent

    writer = HistoryWriter()
    for i in range(3):
        writer.record(JobEvent(message_id=f"m{i}", queue="q", actor="a", status="running", attempts=1))
    writer.record(
        JobEvent(message_id="m1", queue="q", actor="a", status="succeeded", attempts=1, duration_ms=5.0)
    )
    assert writer.flush() == 4, "every event written"
    with session_scope() as session:
        assert session.get(JobRun, "m1").status == "succeeded"  # type: ignore[union-attr]
        assert session.get(JobRun, "m2").status == "running"  # type: ignore[union-attr]


def test_a_message_failing_validation_is_dead_lettered_with_the_reason(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a hand-written message for a real actor whose arguments do not validate
    process = WorkerProcess(platform_env, ["actors.email"], ["email"], log_path=tmp_path / "w.log")
    process.wait_ready(redis_client)
    try:
        bad = send_test_message("send_welcome_email", queue="email", user_id="forty-two")
        row = wait_for(lambda: dead_letter_for(bad.message_id), timeout=20, what="dead letter")
    finally:
        process.stop()
    # Then it is not retried: it is archived at once, naming the bad field
    assert isinstance(row, DeadLetter)
    assert row.exception_type == "InvalidJob" and row.attempts == 1
    assert "user_id" in row.exception_message
    assert process.proc.returncode == 0


@pytest.mark.timeout(120)
def test_a_job_longer_than_the_heartbeat_timeout_is_not_handed_to_another_worker(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a one-thread worker whose consumers fetch nothing while it is busy: a prefetch of one on the queue,
    # and on the delay queue one held message due in ten minutes (Dramatiq heartbeats only when it fetches)
    silent_env = {**platform_env, "dramatiq_queue_prefetch": "1", "dramatiq_delay_queue_prefetch": "1"}
    busy = WorkerProcess(
        silent_env, ["tests.support.actors"], [TEST_QUEUE], log_path=tmp_path / "busy.log", threads=1
    )
    idle: WorkerProcess | None = None
    try:
        busy.wait_ready(redis_client)
        send_test_message("noop", delay_ms=600_000)
        wait_for(lambda: redis_client.llen(f"dramatiq:{TEST_QUEUE}.DQ") == 0, what="the delayed message held")
        # When it runs a job for longer than the heartbeat timeout plus two sweeps of an idle second worker
        seconds = DRAMATIQ_HEARTBEAT_TIMEOUT_MS / 1000 + 2 * DEAD_WORKER_SWEEP_INTERVAL_S
        tag = uuid.uuid4().hex
        send_test_message("slow", tag=tag, seconds=seconds)
        wait_for(lambda: redis_client.get(f"test:started:{tag}"), what="the long job started")
        idle = WorkerProcess(
            platform_env, ["tests.support.actors"], [TEST_QUEUE], log_path=tmp_path / "idle.log", threads=1
        )
        idle.wait_ready(redis_client)
        wait_for(lambda: redis_client.get(f"test:finished:{tag}"), timeout=seconds + 30, what="the long job")
    finally:
        for process in (busy, idle):
            if process is not None:
                process.stop()
    # Then the busy worker's heartbeat thread kept it alive: the idle worker never got a copy, the job ran once
    assert int(redis_client.get(f"test:runs:{tag}") or 0) == 1
    assert int(redis_client.get(f"test:finished:{tag}") or 0) == 1
