"""The middleware stack on Dramatiq's StubBroker: classification, dead-letter hand-off, correlation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware

from app import correlation
from app.errors import PermanentError, RateLimited
from app.middleware.correlation import CorrelationId
from app.middleware.retry_policy import RetryPolicy, RetrySettings


class Recorder(Middleware):
    """Stands where the archive stands: records what is nacked (dead-lettered)."""

    def __init__(self) -> None:
        self.nacked: list[tuple[str, str]] = []

    def after_nack(self, broker: Any, message: Any) -> None:
        self.nacked.append((message.actor_name, str(message.options.get("dead_reason"))))


@pytest.fixture
def stack(dramatiq_broker_restored: None) -> Iterator[tuple[StubBroker, Recorder, Worker]]:
    recorder = Recorder()
    broker = StubBroker(
        middleware=[
            CorrelationId(),
            RetryPolicy(RetrySettings(max_retries=2, min_backoff_ms=1, max_backoff_ms=5)),
            recorder,
        ]
    )
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    worker = Worker(broker, worker_timeout=50)
    worker.start()
    yield broker, recorder, worker
    worker.stop()
    broker.close()


def test_permanent_error_is_nacked_once(stack: tuple[StubBroker, Recorder, Worker]) -> None:
    broker, recorder, worker = stack
    calls: list[int] = []

    @dramatiq.actor(queue_name="t")
    def boom() -> None:
        calls.append(1)
        raise PermanentError("no")

    boom.send()
    broker.join("t", fail_fast=False)
    worker.join()
    assert calls == [1]
    assert recorder.nacked == [("boom", "permanent_error")]


def test_unknown_exceptions_retry_then_die(stack: tuple[StubBroker, Recorder, Worker]) -> None:
    broker, recorder, worker = stack
    calls: list[int] = []

    @dramatiq.actor(queue_name="t")
    def flaky() -> None:
        calls.append(1)
        raise KeyError("bug")

    flaky.send()
    broker.join("t", fail_fast=False)
    worker.join()
    assert len(calls) == 3
    assert recorder.nacked == [("flaky", "retries_exhausted")]


def test_rate_limits_do_not_count_as_attempts(stack: tuple[StubBroker, Recorder, Worker]) -> None:
    broker, recorder, worker = stack
    calls: list[int] = []

    @dramatiq.actor(queue_name="t")
    def limited() -> None:
        calls.append(1)
        if len(calls) <= 4:
            raise RateLimited(retry_after=0.001)

    limited.send()
    broker.join("t", fail_fast=False)
    worker.join()
    assert len(calls) == 5
    assert recorder.nacked == []


def test_child_jobs_inherit_the_correlation_id(stack: tuple[StubBroker, Recorder, Worker]) -> None:
    broker, _, worker = stack
    seen: list[str | None] = []

    @dramatiq.actor(queue_name="t")
    def child_job() -> None:
        seen.append(correlation.current())

    @dramatiq.actor(queue_name="t")
    def parent_job() -> None:
        child_job.send()

    with correlation.correlated("req-42"):
        parent_job.send()
    broker.join("t")
    worker.join()
    assert seen == ["req-42"]


def test_the_global_broker_is_restored_after_a_stub_test() -> None:
    import dramatiq.broker

    from tests.support.helpers import global_broker_restored

    # Given whatever broker the earlier tests left global
    before = dramatiq.broker.global_broker
    # When a block sets a stub as the global broker
    with global_broker_restored():
        stub = StubBroker()
        dramatiq.set_broker(stub)
        assert dramatiq.get_broker() is stub
    # Then the earlier broker is back
    assert dramatiq.broker.global_broker is before
