"""Archive every message that will not be retried into ``dead_letters``, synchronously.

Dramatiq moves a failed message to its XQ on ``nack``; here, right after, the archive row is written and the
XQ copy dropped. When the database is unreachable the XQ copy is kept and enriched with the error, so that
``jobs dlq sync`` imports a complete record later. Undecodable payloads never reach this point: the broker's
consumer (:mod:`app.transport.consumer`) archives them through :func:`archive_undecodable`.
"""

from __future__ import annotations

import logging

import redis
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound

from app import dead_letters
from app.redis_client import dramatiq_key
from app.transport.messages import exception_of, message_of

logger = logging.getLogger(__name__)


class DeadLetterArchive(Middleware):
    """The durable dead-letter archive (``after_nack``)."""

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        exception = exception_of(message)
        # Dramatiq nacks an unknown actor itself, before any middleware's after_process_message sees it.
        default = "unknown_actor" if isinstance(exception, ActorNotFound) else "failed"
        reason = str(message.options.get("dead_reason") or default)
        record = dead_letters.record_from_message(message_of(message), exception, reason)
        redis_id = message.options.get("redis_message_id")
        client = broker.client  # type: ignore[attr-defined]  # only the Redis broker has an XQ
        if dead_letters.try_store(record):
            if redis_id:
                dead_letters.remove_from_xq(client, message.queue_name, redis_id)
            logger.error(
                "message dead-lettered",
                extra={
                    "reason": reason,
                    "exception_type": record.exception_type,
                    "fingerprint": record.fingerprint,
                },
            )
            return
        if redis_id:
            self._enrich_xq_copy(client, message, record)

    @staticmethod
    def _enrich_xq_copy(
        client: redis.Redis[bytes], message: MessageProxy, record: dead_letters.DeadLetterRecord
    ) -> None:
        enriched = message_of(message).copy(
            options={
                "dead_reason": record.reason,
                "dead_exception_type": record.exception_type,
                "dead_exception_message": record.exception_message,
                "dead_traceback": record.traceback,
            }
        )
        queue = dead_letters.canonical_queue(message.queue_name)
        try:
            client.hset(
                dramatiq_key(f"{queue}.XQ.msgs"), message.options["redis_message_id"], enriched.encode()
            )
        except redis.RedisError:
            logger.warning("could not enrich the XQ copy of a dead letter")


def archive_undecodable(queue: str, redis_id: str, data: bytes, error: Exception) -> bool:
    """The broker's poison handler: archive a raw payload; False keeps it in the XQ for ``jobs dlq sync``."""
    from app import metrics

    stored = dead_letters.try_store(dead_letters.record_from_raw(queue, redis_id, data, error))
    metrics.DEAD_LETTERS.labels(dead_letters.canonical_queue(queue), "(undecodable)").inc()
    return stored
