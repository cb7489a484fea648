"""Archive every message that will not be retried into ``dead_letters``, synchronously.

Dramatiq moves a failed message to its dead-letter queue (XQ) on ``nack``; here, right after, the archive row is
written and the transport's copy dropped. When the database is unreachable the copy is kept and annotated with
the error, so that ``jobs dlq sync`` imports a complete record later. The XQ is reached only through
:mod:`app.transport.xq`. Undecodable payloads never reach this point: the broker's consumer
(:mod:`app.transport.consumer`) archives them through :func:`archive_undecodable`.
"""

from __future__ import annotations

import logging

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound

from app import dead_letters
from app.transport import xq
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
        if dead_letters.try_store(record):
            xq.drop_copy(broker, message)
            logger.error(
                "message dead-lettered",
                extra={
                    "reason": reason,
                    "exception_type": record.exception_type,
                    "fingerprint": record.fingerprint,
                },
            )
            return
        # What record_from_message reads back from these options when ``jobs dlq sync`` imports the copy.
        xq.annotate_copy(
            broker,
            message,
            {
                "dead_reason": record.reason,
                "dead_exception_type": record.exception_type,
                "dead_exception_message": record.exception_message,
                "dead_traceback": record.traceback,
                # So that the imported record gets the fingerprint the archive would have given it now.
                "dead_top_frame": dead_letters.top_application_frame(
                    exception.__traceback__ if exception is not None else None
                ),
            },
        )


def archive_undecodable(queue: str, redis_id: str, data: bytes, error: Exception) -> bool:
    """The broker's poison handler: archive a raw payload; False keeps it in the XQ for ``jobs dlq sync``."""
    from app import metrics

    stored = dead_letters.try_store(dead_letters.record_from_raw(queue, redis_id, data, error))
    metrics.DEAD_LETTERS.labels(dead_letters.canonical_queue(queue), "(undecodable)").inc()
    return stored
