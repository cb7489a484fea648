"""Retry or dead-letter each failed attempt, by the class of its error (:mod:`app.errors`).

Replaces Dramatiq's ``Retries`` (20 retries up to 7 days, no notion of permanent errors or rate limits):

- ``PermanentError``/``InvalidJob``, an unknown actor: dead at once;
- ``RateLimited(retry_after)``: retried after the time the service named, without spending an attempt;
- anything else (``RetryableError``, time limits, unknown exceptions): exponential backoff with jitter,
  ``min_backoff * factor**n`` capped at ``max_backoff``, until ``max_retries`` is spent;
- nothing is retried past the message's max age.

A retry that meets the broker unreachable is not dead-lettered: it is scheduled when the broker returns, and
until then the original stays unacked (docs/dramatiq.md "Idle pickup and reconnects").
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

import redis
from dramatiq import Broker, Message, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound, BrokerConnectionError, BrokerError
from dramatiq.middleware.shutdown import Shutdown

from app.errors import PermanentError, RateLimited
from app.transport import leave_unacked

logger = logging.getLogger(__name__)

#: Errors that mean the broker is unreachable for now (Redis down or restarting), not that the retry is wrong.
BROKER_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, BrokerConnectionError)
#: First and longest pause between two attempts to schedule a retry while the broker is unreachable.
BROKER_RETRY_FIRST_S = 0.5
BROKER_RETRY_MAX_S = 5.0


@dataclass(frozen=True)
class RetrySettings:
    """One queue's policy. Defaults: 5 retries at 5 s, 25 s, 125 s, 625 s, 1 h; nothing older than 24 h."""

    max_retries: int = 5
    min_backoff_ms: int = 5_000
    backoff_factor: float = 5.0
    max_backoff_ms: int = 3_600_000
    max_age_ms: int = 24 * 3_600_000
    #: Each delay is stretched by a random factor in [1, 1 + jitter] so that retries do not stampede.
    jitter: float = 0.1

    def backoff_ms(self, retries_so_far: int, rng: random.Random | None = None) -> int:
        base = min(self.min_backoff_ms * self.backoff_factor**retries_so_far, self.max_backoff_ms)
        return int(base * (1 + (rng or random).uniform(0, self.jitter)))


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_ms: int = 0
    spends_attempt: bool = True
    reason: str = ""


def decide(
    exception: BaseException,
    *,
    retries: int,
    age_ms: float,
    policy: RetrySettings,
    rng: random.Random | None = None,
) -> Decision:
    """What to do with a failed attempt: pure, so the rules are unit-tested without a broker."""
    if isinstance(exception, PermanentError):
        return Decision(False, reason="permanent_error")
    if isinstance(exception, ActorNotFound):
        return Decision(False, reason="unknown_actor")
    if isinstance(exception, RateLimited):
        delay = int(exception.retry_after * 1000)
        if age_ms + delay > policy.max_age_ms:
            return Decision(False, reason="too_old")
        return Decision(True, delay_ms=delay, spends_attempt=False, reason="rate_limited")
    if isinstance(exception, Shutdown):
        return Decision(True, delay_ms=0, spends_attempt=False, reason="shutdown")
    if retries >= policy.max_retries:
        return Decision(False, reason="retries_exhausted")
    delay = policy.backoff_ms(retries, rng)
    if age_ms + delay > policy.max_age_ms:
        return Decision(False, reason="too_old")
    return Decision(True, delay_ms=delay, reason="retryable")


#: Actor options that override the queue's policy, and the RetrySettings field each one sets.
ACTOR_OPTIONS = {
    "max_retries": "max_retries",
    "min_backoff": "min_backoff_ms",
    "backoff_factor": "backoff_factor",
    "max_backoff": "max_backoff_ms",
    "max_age": "max_age_ms",
}


class RetryPolicy(Middleware):
    """Per-queue policies; an actor may override any part through its options (``max_retries``, ...)."""

    def __init__(
        self, default: RetrySettings | None = None, per_queue: dict[str, RetrySettings] | None = None
    ):
        self.default = default or RetrySettings()
        self.per_queue = per_queue or {}
        #: Set when the worker starts stopping: a retry waiting for the broker gives up then.
        self._stopping = threading.Event()

    @property
    def actor_options(self) -> set[str]:
        return set(ACTOR_OPTIONS)

    def policy_for(self, broker: Broker, message: MessageProxy) -> RetrySettings:
        policy = self.per_queue.get(message.queue_name.removesuffix(".DQ"), self.default)
        try:
            options = broker.get_actor(message.actor_name).options
        except ActorNotFound:
            return policy
        overrides = {
            field: options[name] for name, field in ACTOR_OPTIONS.items() if options.get(name) is not None
        }
        return replace(policy, **overrides) if overrides else policy

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        retries = int(message.options.get("retries", 0))
        age_ms = time.time() * 1000 - message.message_timestamp
        decision = decide(exception, retries=retries, age_ms=age_ms, policy=self.policy_for(broker, message))
        message.options["dead_reason" if not decision.retry else "last_retry_reason"] = decision.reason
        if not decision.retry:
            message.fail()
            return
        if decision.spends_attempt:
            message.options["retries"] = retries + 1
        else:
            message.options["deferrals"] = int(message.options.get("deferrals", 0)) + 1
        message.options["traceback"] = "".join(traceback.format_exception(exception, limit=-10))[-4000:]
        try:
            # The proxy forwards to Message.copy(): the message with the options updated above, as a Message.
            scheduled = self._schedule(broker, message, message.copy(), decision.delay_ms)
        except (redis.RedisError, BrokerError):
            logger.exception("could not schedule the retry; dead-lettering instead")
            message.options["dead_reason"] = "retry_enqueue_failed"
            message.fail()
            return
        if scheduled:
            logger.info(
                "retry scheduled",
                extra={"delay_ms": decision.delay_ms, "reason": decision.reason, "attempts": retries + 1},
            )

    def _schedule(self, broker: Broker, message: MessageProxy, retry: Message[Any], delay_ms: int) -> bool:
        """Enqueue ``retry``; while the broker is unreachable, keep trying (from this worker thread, before the
        original is acked). True once scheduled.

        The retry keeps its due time: each attempt delays it by what is left of ``delay_ms``. A process that
        dies meanwhile has acked nothing, so the sweep redelivers the original. A worker that stops first gives
        up and leaves the original unacked (``leave_unacked``): it returns to its queue, nothing is lost.
        Errors that are not a lost connection propagate.
        """
        due = time.monotonic() + delay_ms / 1000
        pause = BROKER_RETRY_FIRST_S
        failures = 0
        while True:
            try:
                broker.enqueue(retry, delay=max(0, int((due - time.monotonic()) * 1000)))
            except BROKER_UNREACHABLE as err:
                failures += 1
                if failures == 1:
                    logger.warning(
                        "retry not scheduled yet: broker unreachable; trying again until it returns",
                        extra={"message_id": message.message_id, "error": f"{type(err).__name__}: {err}"},
                    )
                if self._stopping.wait(pause):
                    left = leave_unacked(broker, message)
                    logger.warning(
                        "worker stopping before the broker returned; retry not scheduled",
                        extra={"message_id": message.message_id, "left_unacked": left, "failures": failures},
                    )
                    return False
                pause = min(pause * 2, BROKER_RETRY_MAX_S)
                continue
            if failures:
                logger.info(
                    "retry scheduled after the broker returned",
                    extra={"message_id": message.message_id, "failures": failures},
                )
            return True

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        self._stopping.clear()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self._stopping.set()
