"""Dramatiq's Redis consumer, made safe against poison payloads and batching its acks.

Dramatiq's consumer decodes without catching ``DecodeError``: the consumer thread restarts, the bad id stays in
its acks set and comes back whenever the worker dies (a poison loop, docs/dramatiq.md). Here an undecodable
payload is archived as a dead letter with its raw bytes and removed; if the archive is unreachable it is moved
to Dramatiq's XQ instead, where ``jobs dlq sync`` finds it later. Either way the worker goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.errors import DecodeError

from app.transport.maintenance import unfinished_message_ids

if TYPE_CHECKING:
    from app.transport.redis_broker import PlatformRedisBroker

logger = logging.getLogger(__name__)

#: Called with (queue, redis id, raw payload, error); returns True when the payload was archived durably.
PoisonHandler = Callable[[str, str, bytes, Exception], bool]


class PoisonSafeConsumer(_RedisConsumer):  # type: ignore[misc]
    """A consumer that hands undecodable payloads to its broker's ``poison_handler`` and batches its acks.

    Dramatiq's worker threads ack one message per round trip; here an ack is queued for the broker's ack flusher
    of this queue (:meth:`PlatformRedisBroker.ack_flusher`), which sends the acks of every thread in one
    pipelined round trip a few milliseconds later. Closing the consumer (a graceful worker stop) sends what is
    still queued.
    """

    def __init__(self, broker: PlatformRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self._acks = broker.ack_flusher(queue_name)

    def ack(self, message: MessageProxy) -> None:
        self._acks.submit(message.options["redis_message_id"])
        self.queued_message_ids.discard(message.message_id)

    def close(self) -> None:
        try:
            self._acks.flush_now()
        except redis.RedisError:
            # The flusher keeps them and retries for as long as the process lives; if it exits first, their
            # messages are redelivered (at-least-once), as with an ack Dramatiq could not send.
            logger.warning(
                "acks not sent at consumer close",
                extra={"queue": self.queue_name, "pending": self._acks.pending()},
                exc_info=True,
            )
        super().close()

    def __next__(self) -> MessageProxy | None:
        while True:
            try:
                return super().__next__()  # type: ignore[no-any-return,no-untyped-call]
            except DecodeError as err:
                self._quarantine(err)

    def _quarantine(self, err: DecodeError) -> None:
        data = err.data if isinstance(err.data, bytes) else str(err.data).encode()
        redis_id = self._find_fetched_id(data)
        logger.error(
            "undecodable message quarantined",
            extra={"queue": self.queue_name, "redis_id": redis_id, "error": repr(err.error)},
        )
        if redis_id is None:
            return
        handler: PoisonHandler | None = getattr(self.broker, "poison_handler", None)
        archived = False
        if handler is not None:
            try:
                archived = handler(self.queue_name, redis_id, data, err.error)
            except Exception:
                logger.exception("archiving an undecodable message failed; it stays in the XQ")
        if archived:
            self.broker.do_ack(self.queue_name, redis_id)
        else:
            self.broker.do_nack(self.queue_name, redis_id)

    def _find_fetched_id(self, data: bytes) -> str | None:
        """The redis id of ``data`` among this consumer's fetched-but-unacked messages (at most a prefetch)."""
        ids = unfinished_message_ids(self.broker, self.queue_name)
        if not ids:
            return None
        bodies = self.broker.client.hmget(f"{self.broker.namespace}:{self.queue_name}.msgs", ids)
        for redis_id, body in zip(ids, bodies, strict=True):
            if body == data:
                return redis_id
        return None
