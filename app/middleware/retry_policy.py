"""Retry or dead-letter each failed attempt, by the class of its error (:mod:`app.errors`).

Replaces Dramatiq's ``Retries`` (20 retries up to 7 days, no notion of permanent errors or rate limits):

- ``PermanentError``/``InvalidJob``, an unknown actor: dead at once;
- ``RateLimited(retry_after)``: retried after the time the service named, without spending an attempt;
- anything else (``RetryableError``, time limits, unknown exceptions): exponential backoff with jitter,
  ``min_backoff * factor**n`` capped at ``max_backoff``, until ``max_retries`` is spent;
- nothing is retried past the message's max age.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

import redis
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound, BrokerError
from dramatiq.middleware.shutdown import Shutdown

from app.errors import PermanentError, RateLimited

logger = logging.getLogger(__name__)


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
            broker.enqueue(message.copy(), delay=decision.delay_ms)
        except (redis.RedisError, BrokerError):
            logger.exception("could not schedule the retry; dead-lettering instead")
            message.options["dead_reason"] = "retry_enqueue_failed"
            message.fail()
            return
        logger.info(
            "retry scheduled",
            extra={"delay_ms": decision.delay_ms, "reason": decision.reason, "attempts": retries + 1},
        )
