"""Actors used only by the tests, on the queue ``test``, with millisecond backoffs so retries are quick.

Their behaviour is driven by arguments and by Redis keys the test sets, because they run in a real worker
process started by the test.
"""

from __future__ import annotations

import logging
import time

import dramatiq

import app.broker  # noqa: F401
from app import enqueue
from app.errors import PermanentError, RateLimited, RetryableError
from app.redis_client import get_redis
from tests.support.helpers import TEST_QUEUE

logger = logging.getLogger("tests.actors")

FAST = {"queue_name": TEST_QUEUE, "min_backoff": 300, "backoff_factor": 2, "max_backoff": 2_000}


def _count(name: str) -> int:
    return int(get_redis().incr(f"test:count:{name}"))


@dramatiq.actor(queue_name=TEST_QUEUE, max_retries=2, min_backoff=1_000, backoff_factor=3, max_backoff=10_000)
def always_retryable(tag: str) -> None:
    get_redis().rpush(f"test:times:{tag}", time.time())
    raise RetryableError(f"transient failure for {tag}")


@dramatiq.actor(**FAST, max_retries=2)
def always_permanent(tag: str) -> None:
    _count(tag)
    raise PermanentError(f"permanent failure for {tag}")


@dramatiq.actor(**FAST, max_retries=1)
def rate_limited_then_ok(tag: str, times: int) -> None:
    """Raises RateLimited ``times`` times (more than max_retries), then succeeds."""
    if _count(tag) <= times:
        raise RateLimited(retry_after=0.2)
    get_redis().set(f"test:done:{tag}", "1")


@dramatiq.actor(**FAST)
def fail_until_flag(tag: str) -> None:
    """Fails permanently until the test sets ``test:flag:<tag>``; used to requeue a dead letter."""
    _count(tag)
    if not get_redis().exists(f"test:flag:{tag}"):
        raise PermanentError("flag not set")
    get_redis().set(f"test:done:{tag}", "1")


@dramatiq.actor(**FAST)
def parent(tag: str) -> None:
    logger.info("parent running", extra={"tag": tag})
    child.send(tag=tag)


@dramatiq.actor(**FAST)
def child(tag: str) -> None:
    logger.info("child running", extra={"tag": tag})
    get_redis().set(f"test:done:{tag}", "1")


@dramatiq.actor(**FAST)
def slow(tag: str, seconds: float) -> None:
    get_redis().set(f"test:started:{tag}", "1")
    get_redis().incr(f"test:runs:{tag}")
    time.sleep(seconds)
    get_redis().incr(f"test:finished:{tag}")


@dramatiq.actor(**FAST)
def noop() -> None:
    pass


@dramatiq.actor(**FAST)
def enqueue_welcome(user_id: int) -> None:
    """Lets a test check that the helpers inside a worker reuse the worker's broker."""
    enqueue.send("send_welcome_email", user_id=user_id)
