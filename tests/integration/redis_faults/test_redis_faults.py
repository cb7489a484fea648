"""Redis killed under a working email worker: nothing the worker held is stranded, lost or sent twice.

The Redis server is the test's own (:mod:`tests.support.redis_server`), durable (append-only file, fsync always),
so a SIGKILL loses no key: what these tests check is the worker's side. Dramatiq's consumer drops its in-memory
delay queue on a connection error and the platform's retry policy met a Redis that was down; see
docs/dramatiq.md "Idle pickup and reconnects".
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from app import enqueue
from app.db.models import DeadLetter, EmailLog
from app.db.session import session_scope
from app.testing.sendgrid_server import Fault, Latency, SendGridSimulator
from app.transport.publish import publish
from app.transport.redis_broker import build_redis_broker
from tests.integration.email.factories import add_user
from tests.integration.email.queue import drained
from tests.support.helpers import wait_for
from tests.support.redis_server import RedisServer
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

StartWorker = Callable[[], WorkerProcess]

#: How long Redis stays down (the issue's blip: "killed and back 5 s later").
OUTAGE_S = 5.0
#: How far past its eta an email may arrive after the blip: a correctness bound, generous for a loaded CI host
#: (without the fix they never arrive while the worker lives).
LATE_BOUND_S = 20.0
#: The email queue's first retry backoff (5 s) stretched by its largest jitter (10 %).
FIRST_BACKOFF_S = 5.5


def _recipient(body: dict[str, Any]) -> str:
    return str(body["personalizations"][0]["to"][0]["email"])


def _held_delayed(client: redis.Redis) -> int:
    """Delayed messages fetched by a worker and held in its memory (its acks sets of ``email.DQ``)."""
    return sum(int(client.scard(key)) for key in client.scan_iter(match="dramatiq:__acks__.*.email.DQ"))


def _dead_letters() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)


def _outage(server: RedisServer, worker: WorkerProcess) -> None:
    """SIGKILL Redis, keep it down for OUTAGE_S and until the worker has met the outage, then restart it."""
    server.kill()
    back_at = time.monotonic() + OUTAGE_S
    wait_for(
        lambda: time.monotonic() >= back_at and "connection error" in worker.output().lower(),
        timeout=OUTAGE_S + 30,
        what="the worker to meet the outage",
    )
    server.start()


def test_a_redis_restart_strands_no_delayed_email_and_no_retry(
    start_email_worker: StartWorker, owned_redis: RedisServer, simulator: SendGridSimulator
) -> None:
    # Given 100 welcome emails enqueued with a delay and 20 that SendGrid answers 503 once (so 20 retries pending)
    client = owned_redis.client()
    later = [add_user(email=f"later{n}@example.com") for n in range(100)]
    retried = [add_user(email=f"retry{n}@example.com") for n in range(20)]
    simulator.script(Fault.error(503), times=20, match=lambda body: _recipient(body).startswith("retry"))
    worker = start_email_worker()
    publisher = build_redis_broker(owned_redis.url())
    delay_s = 15.0
    enqueued_at = time.time()
    publish(
        [
            (j.message, j.delay_ms)
            for j in (enqueue.job("send_welcome_email", user_id=u, delay=delay_s) for u in later)
        ],
        publisher,
    )
    publish(
        [(j.message, j.delay_ms) for j in (enqueue.job("send_welcome_email", user_id=u) for u in retried)],
        publisher,
    )
    # ... all of them held in the worker's memory: fetched from the delay queue, waiting for their eta
    wait_for(
        lambda: simulator.count(503) == 20 and _held_delayed(client) == 120,
        timeout=15,
        what="the worker to hold 100 delayed emails and 20 retries",
    )
    retries_due = max(r.at for r in simulator.requests if r.status == 503) + FIRST_BACKOFF_S

    # When Redis is SIGKILLed and comes back 5 s later
    _outage(owned_redis, worker)

    # Then every email arrives, none much past its eta
    expected = {f"welcome:{u}" for u in later + retried}
    deadline_s = max(enqueued_at + delay_s, retries_due) + LATE_BOUND_S - time.time()
    try:
        wait_for(
            lambda: {m.custom_args["idempotency_key"] for m in simulator.messages} >= expected,
            timeout=max(deadline_s, 1.0),
            what="all 120 emails at the simulator",
        )
    except AssertionError as err:
        arrived = len({m.custom_args["idempotency_key"] for m in simulator.messages})
        raise AssertionError(f"{err}; {arrived} arrived\n{worker.output()[-3000:]}") from None
    for message in simulator.messages:
        user = int(message.custom_args["idempotency_key"].split(":")[1])
        eta = enqueued_at + delay_s if user in later else retries_due
        assert message.received_at <= eta + LATE_BOUND_S, message.custom_args
    # ... exactly once each, and nothing dead-lettered or left behind
    wait_for(lambda: drained(client), timeout=30, what="the email queue to drain")
    counts = Counter(m.custom_args["idempotency_key"] for m in simulator.messages)
    assert set(counts) == expected
    assert [key for key, n in counts.items() if n > 1] == []
    assert _dead_letters() == 0 and client.zcard("dramatiq:email.XQ") == 0
    client.close()


@pytest.mark.parametrize("latency", [Latency(p50_s=2.0, p99_s=2.0)])
def test_a_retry_that_meets_redis_down_is_scheduled_when_it_returns(
    start_email_worker: StartWorker, owned_redis: RedisServer, simulator: SendGridSimulator
) -> None:
    # Given a welcome email whose first send SendGrid answers 503 after 2 s
    user = add_user()
    simulator.script(Fault.error(503), on_request=1)
    worker = start_email_worker()
    publish(
        [(enqueue.job("send_welcome_email", user_id=user).message, None)],
        build_redis_broker(owned_redis.url()),
    )
    wait_for(lambda: simulator.requests, what="the first send to reach the simulator")

    # When Redis dies while that send is in flight, so that the retry policy meets it down
    owned_redis.kill()
    wait_for(
        lambda: any(r.get("logger") == "app.middleware.retry_policy" for r in worker.log_records()),
        timeout=30,
        what="the retry policy to meet Redis down",
    )
    # ... and comes back
    owned_redis.start()

    # Then the retry is scheduled and sends the email once; nothing is dead-lettered
    key = f"welcome:{user}"
    try:
        wait_for(
            lambda: simulator.messages or _dead_letters(),
            timeout=40,
            what="the retry's send or a dead letter",
        )
    except AssertionError as err:
        raise AssertionError(f"{err}\n{worker.output()[-3000:]}") from None
    assert _dead_letters() == 0, worker.output()[-3000:]
    assert [m.custom_args["idempotency_key"] for m in simulator.messages] == [key]
    client = owned_redis.client()
    wait_for(lambda: drained(client), timeout=30, what="the email queue to drain")
    assert client.zcard("dramatiq:email.XQ") == 0
    client.close()
    with session_scope() as session:
        assert list(session.scalars(select(EmailLog.status).where(EmailLog.idempotency_key == key))) == [
            "sent"
        ]
