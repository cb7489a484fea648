"""Actors for the Sentry and metrics tests, on the queue ``test``, with millisecond backoffs.

The "leaky" actors put secrets and an email address where real code tends to: in a URL in the exception
message, in a log line (which becomes a breadcrumb), in an ``Authorization`` header. The secrets arrive as
arguments so that they are not in the source either (the SDK sends source lines around each frame).
"""

from __future__ import annotations

import logging

import dramatiq

import app.broker  # noqa: F401  (binds the actors to the platform broker)
from app.errors import PermanentError, RetryableError
from app.redis_client import get_redis
from tests.support.helpers import TEST_QUEUE

logger = logging.getLogger("tests.observability_actors")

FAST = {"queue_name": TEST_QUEUE, "min_backoff": 200, "backoff_factor": 2, "max_backoff": 1_000}


@dramatiq.actor(**FAST, max_retries=2)
def leaky_permanent(email: str, url: str) -> None:
    """Logs the URL with its API key, then fails for good naming the user and the URL."""
    logger.info("calling %s for %s", url, email)
    raise PermanentError(f"SAM.gov refused {url} for {email}")


@dramatiq.actor(**FAST, max_retries=2)
def leaky_retryable(email: str, token: str) -> None:
    """Always fails with a retryable error that quotes an Authorization header and the user's address."""
    get_redis().incr(f"test:count:leaky_retryable:{email}")
    logger.warning("upstream said 503", extra={"request_headers": f"Authorization: Bearer {token}"})
    raise RetryableError(f"503 from upstream for {email} (sent Authorization: Bearer {token})")


@dramatiq.actor(**FAST, max_retries=2)
def fast_retryable() -> None:
    """Fails twice quickly (retried at ~0.2 s and ~0.4 s), then dead-letters: for the metrics tests."""
    raise RetryableError("transient")
