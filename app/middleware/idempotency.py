"""Skip a message whose idempotency key already completed: the fast, Redis-side duplicate filter.

It stops redelivered and double-enqueued jobs before they run. It is not a guarantee for side effects: a crash
between the side effect and this mark re-runs the job. The emails therefore claim their key in ``email_log``
(durable) before sending, and being covered by that claim they skip this filter altogether.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from app.constants import IDEMPOTENCY_MARK_TTL_S
from app.jobs import SPECS
from app.redis_client import get_redis, platform_key

logger = logging.getLogger(__name__)


def done_key(idempotency_key: str) -> str:
    return platform_key("done", idempotency_key)


def _claims_own_key(actor: str) -> bool:
    spec = SPECS.get(actor)
    return spec is not None and spec.claims_own_key


class Idempotency(Middleware):
    """Marks keys done after success; a later message with a done key is skipped, not run.

    Actors whose service claims the key durably itself (``JobSpec.claims_own_key``: the emails) are left alone:
    their claim already turns a duplicate into a no-op, and the mark would cost two Redis round trips each.
    """

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        key = message.options.get("idempotency_key")
        if not key or _claims_own_key(message.actor_name):
            return
        try:
            already = get_redis().exists(done_key(key))
        except redis.RedisError:
            logger.warning("idempotency check unavailable; running the job", extra={"key": key})
            return
        if already:
            raise SkipMessage(f"idempotency key {key!r} already completed")

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        key = message.options.get("idempotency_key")
        if key and exception is None and not _claims_own_key(message.actor_name):
            try:
                get_redis().set(done_key(key), message.message_id, ex=IDEMPOTENCY_MARK_TTL_S)
            except redis.RedisError:
                logger.warning("could not mark idempotency key done", extra={"key": key})
