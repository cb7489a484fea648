"""Whether the attempt that just failed is the message's last one, so a partition can report its end.

A partition that keeps failing is dead-lettered by the retry policy and the dead-letter archive, after the
actor returned; nothing would then tell its run. So the partition asks, while it can still write, the same
question the retry policy is about to answer (:func:`app.middleware.retry_policy.decide`, on the message's
retries and age and the queue's policy): when the answer is "no retry", it records itself as failed before
re-raising, and the run's fan-in counts it. Outside a worker (a test, the CLI) nothing retries: every failure
is final.
"""

from __future__ import annotations

import time

import dramatiq
from dramatiq.middleware import CurrentMessage

from app.middleware.retry_policy import RetryPolicy, decide


def is_final_failure(exception: BaseException) -> bool:
    """True when the message now running will not be retried after ``exception``."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return True
    broker = dramatiq.get_broker()
    policy = next((m for m in broker.middleware if isinstance(m, RetryPolicy)), None)
    if policy is None:
        return True
    retries = int(message.options.get("retries", 0))
    age_ms = time.time() * 1000 - message.message_timestamp
    settings = policy.policy_for(broker, message)  # type: ignore[arg-type]
    # No jitter: the policy's own draw may stretch the delay by up to 10 %, which only matters for max age.
    return not decide(exception, retries=retries, age_ms=age_ms, policy=settings).retry
