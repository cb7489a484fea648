"""The retry policy when the broker is unreachable: the retry waits for it instead of being dead-lettered."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound

from app.errors import RetryableError
from app.middleware import retry_policy
from app.middleware.retry_policy import RetryPolicy


class FlakyBroker:
    """A broker whose first ``failures`` enqueues meet a dead connection (only what the policy calls)."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or redis.ConnectionError("Connection refused")
        self.attempts: list[int | None] = []

    def get_actor(self, name: str) -> Any:
        raise ActorNotFound(name)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        self.attempts.append(delay)
        if len(self.attempts) <= self.failures:
            raise self.error
        return message


def failed_attempt() -> MessageProxy:
    return MessageProxy(Message(queue_name="email", actor_name="send", args=(), kwargs={}, options={}))


@pytest.fixture(autouse=True)
def quick_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_policy, "BROKER_RETRY_FIRST_S", 0.001)
    monkeypatch.setattr(retry_policy, "BROKER_RETRY_MAX_S", 0.002)


def test_a_retry_waits_for_the_broker_and_keeps_its_due_time() -> None:
    # Given a broker that is unreachable for three attempts
    broker = FlakyBroker(failures=3)
    message = failed_attempt()
    # When an attempt fails with a retryable error
    RetryPolicy().after_process_message(broker, message, exception=RetryableError("503"))  # type: ignore[arg-type]
    # Then the retry was scheduled on the fourth try, nothing was dead-lettered, and its delay only shrank
    assert len(broker.attempts) == 4
    assert not message.failed and "dead_reason" not in message.options
    delays = [d for d in broker.attempts if d is not None]
    assert delays == sorted(delays, reverse=True) and delays[0] >= 5_000


def test_a_stopping_worker_gives_up_without_dead_lettering() -> None:
    # Given a worker that is stopping and a broker that stays unreachable
    broker = FlakyBroker(failures=1_000)
    policy = RetryPolicy()
    policy.before_worker_shutdown(broker, None)  # type: ignore[arg-type]
    message = failed_attempt()
    # When an attempt fails
    policy.after_process_message(broker, message, exception=RetryableError("503"))  # type: ignore[arg-type]
    # Then the policy gave up after one try without failing the message (it is not acked on the platform's
    # broker, and returns to its queue)
    assert len(broker.attempts) == 1
    assert not message.failed


def test_an_error_that_is_not_a_lost_connection_still_dead_letters() -> None:
    broker = FlakyBroker(failures=1, error=redis.ResponseError("OOM command not allowed"))
    message = failed_attempt()
    RetryPolicy().after_process_message(broker, message, exception=RetryableError("503"))  # type: ignore[arg-type]
    assert message.failed and message.options["dead_reason"] == "retry_enqueue_failed"
