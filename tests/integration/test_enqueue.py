"""Enqueue helpers on the real Redis and PostgreSQL: pipelined batches, the outbox, idempotency."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq import Message
from sqlalchemy import func, select

from app import enqueue
from app.db.models import OutboxEntry
from app.db.session import session_scope
from app.outbox import relay_once
from app.transport import redis_broker
from app.transport.publish import publish
from tests.support.helpers import send_test_message, wait_for
from tests.support.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.integration


def stored_messages(client: redis.Redis, queue: str) -> list[dict[str, object]]:
    ids = client.lrange(f"dramatiq:{queue}", 0, -1)
    return [json.loads(client.hget(f"dramatiq:{queue}.msgs", i) or b"{}") for i in ids]


def test_many_sends_a_batch_in_order_with_refs(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    refs = enqueue.many(enqueue.job("send_welcome_email", user_id=u) for u in range(1, 501))
    messages = stored_messages(redis_client, "email")
    assert len(refs) == len(messages) == 500
    assert [m["message_id"] for m in messages] == [r.message_id for r in refs]
    assert [m["kwargs"] for m in messages[:2]] == [{"user_id": 1}, {"user_id": 2}]
    assert {r.queue for r in refs} == {"email"}


def test_delayed_jobs_go_to_the_delay_queue(platform_env: dict[str, str], redis_client: redis.Redis) -> None:
    ref = enqueue.welcome_email(user_id=5, delay=120)
    assert redis_client.llen("dramatiq:email") == 0
    (stored,) = stored_messages(redis_client, "email.DQ")
    assert stored["message_id"] == ref.message_id
    options = stored["options"]
    assert isinstance(options, dict) and options["idempotency_key"] == "welcome:5"
    assert options["eta"] > stored["message_timestamp"]  # type: ignore[operator]


def test_outbox_publishes_only_after_commit(platform_env: dict[str, str], redis_client: redis.Redis) -> None:
    # Given a job enqueued inside a transaction that rolls back, and one inside a transaction that commits
    with pytest.raises(RuntimeError), session_scope() as session:
        enqueue.welcome_email(user_id=1, session=session)
        raise RuntimeError("the web request failed")
    with session_scope() as session:
        kept = enqueue.welcome_email(user_id=2, session=session)
    assert redis_client.llen("dramatiq:email") == 0
    # When the relay runs
    with session_scope() as session:
        assert relay_once(session) == 1
        assert relay_once(session) == 0
    # Then exactly the committed job is on the queue, under the id the caller got back
    (stored,) = stored_messages(redis_client, "email")
    assert stored["message_id"] == kept.message_id
    with session_scope() as session:
        unpublished = session.scalar(
            select(func.count()).select_from(OutboxEntry).where(OutboxEntry.published_at.is_(None))
        )
        assert unpublished == 0


@pytest.fixture
def worker(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> Iterator[WorkerProcess]:
    with running_worker(platform_env, redis_client, tmp_path / "worker.log", threads=2) as process:
        yield process


def test_a_finished_idempotency_key_is_not_run_again(
    worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    tag = uuid.uuid4().hex

    def send() -> None:
        send_test_message("slow", options={"idempotency_key": f"once-{tag}"}, tag=tag, seconds=0)

    send()
    wait_for(lambda: redis_client.get(f"test:finished:{tag}"), what="first run")
    send()
    send()
    wait_for(lambda: redis_client.llen("dramatiq:test") == 0, what="duplicates consumed")

    def skipped_twice() -> bool:
        return sum(1 for r in worker.log_records() if r.get("outcome") == "skipped") >= 2

    wait_for(skipped_twice, what="two skipped duplicates")
    assert int(redis_client.get(f"test:finished:{tag}") or 0) == 1


def test_batched_acks_leave_no_message_behind(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Eight threads ack concurrently, so acks go out in pipelined batches; every one of them must land."""
    with running_worker(platform_env, redis_client, tmp_path / "worker.log", threads=8) as worker:
        noop = Message(queue_name="test", actor_name="noop", args=(), kwargs={}, options={})
        publish([(noop.copy(message_id=str(uuid.uuid4())), None) for _ in range(400)])

        def settled() -> bool:
            acks = [k for k in redis_client.scan_iter(match="dramatiq:__acks__.*") if k.endswith(b".test")]
            return redis_client.llen("dramatiq:test") == 0 and not any(redis_client.scard(k) for k in acks)

        wait_for(settled, timeout=60, what="400 messages processed and acked")
        assert redis_client.hlen("dramatiq:test.msgs") == 0

        def finished() -> int:
            return sum(1 for r in worker.log_records() if r.get("event") == "job finished")

        wait_for(lambda: finished() >= 400, what="400 job lines (the log writer flushes every 0.1 s)")
        assert finished() == 400


def test_a_graceful_stop_sends_the_acks_still_queued(
    platform_env: dict[str, str], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given acks that would wait a minute before leaving on their own
    monkeypatch.setattr(redis_broker, "ACK_FLUSH_INTERVAL_S", 60.0)
    broker = redis_broker.PlatformRedisBroker(url=platform_env["REDIS_URL"])
    done: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="acks", actor_name="record_done")
    def record_done(n: int) -> None:
        done.append(n)

    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        for n in range(5):
            record_done.send(n)
        wait_for(lambda: len(done) == 5, what="five messages processed")
        acks_key = f"dramatiq:__acks__.{broker.broker_id}.acks"
        # Then the acks are still queued in the process (the messages are fetched but not acked in Redis)
        assert redis_client.scard(acks_key) == 5
    finally:
        # When the worker stops gracefully
        worker.stop()
    # Then every ack went out, and nothing is left to redeliver
    assert redis_client.scard(acks_key) == 0
    assert redis_client.hlen("dramatiq:acks.msgs") == 0
    assert redis_client.llen("dramatiq:acks") == 0


def test_a_batch_goes_out_after_redis_lost_its_scripts(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    """Batches call Dramatiq's script by its SHA; after a Redis restart (here SCRIPT FLUSH) it is loaded again."""
    redis_client.script_flush()
    refs = enqueue.many([enqueue.job("send_welcome_email", user_id=n) for n in (1, 2, 3)])
    assert [m["message_id"] for m in stored_messages(redis_client, "email")] == [r.message_id for r in refs]
