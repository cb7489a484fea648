"""Dramatiq's Redis broker, made safe against poison payloads.

Dramatiq's consumer decodes without catching ``DecodeError``: the consumer thread restarts, the bad id stays in
its acks set and comes back whenever the worker dies (a poison loop, DRAMATIQ-NOTES.md). Here an undecodable
payload is archived as a dead letter with its raw bytes and removed; if the archive is unreachable it is moved
to Dramatiq's XQ instead, where ``jobs dlq sync`` finds it later. Either way the worker goes on.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.errors import DecodeError
from redis.exceptions import NoScriptError

from app.timed_flush import TimedFlush

logger = logging.getLogger(__name__)

#: How long the first queued ack waits for others to join its round trip. Short next to anything that watches
#: acks (Dramatiq's heartbeat timeout is a minute); long enough to batch a busy worker's acks.
ACK_FLUSH_INTERVAL_S = 0.005

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
        client = self.broker.client
        acks_key = f"{self.broker.namespace}:__acks__.{self.broker.broker_id}.{self.queue_name}"
        ids = [i.decode() for i in client.smembers(acks_key)]
        if not ids:
            return None
        bodies = client.hmget(f"{self.broker.namespace}:{self.queue_name}.msgs", ids)
        for redis_id, body in zip(ids, bodies, strict=True):
            if body == data:
                return str(redis_id)
        return None


class PlatformRedisBroker(RedisBroker):  # type: ignore[misc]
    """The Redis broker whose consumers quarantine poison payloads instead of looping on them."""

    def __init__(self, *, poison_handler: PoisonHandler | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.poison_handler = poison_handler
        self._ack_flushers: dict[str, TimedFlush[str]] = {}
        self._ack_flushers_lock = threading.Lock()

    def ack_flusher(self, queue_name: str) -> TimedFlush[str]:
        """The queue's ack batcher, owned by the broker so that a consumer restarted after a connection error
        does not drop the acks its predecessor had queued."""
        with self._ack_flushers_lock:
            flusher = self._ack_flushers.get(queue_name)
            if flusher is None:
                flusher = TimedFlush(
                    functools.partial(self._ack_batch, queue_name),
                    interval=ACK_FLUSH_INTERVAL_S,
                    name=f"acks:{queue_name}",
                )
                self._ack_flushers[queue_name] = flusher
            return flusher

    def _ack_batch(self, queue_name: str, redis_ids: Sequence[str]) -> None:
        if len(redis_ids) == 1:
            self.do_ack(queue_name, redis_ids[0])
        else:
            dispatch_pipelined(self, "ack", [(queue_name, [redis_id]) for redis_id in redis_ids])

    @property
    def consumer_class(self) -> type[PoisonSafeConsumer]:
        return PoisonSafeConsumer


def dispatch_pipelined(
    broker: RedisBroker, command: str, calls: Sequence[tuple[str, Sequence[object]]]
) -> list[Any]:
    """Dramatiq's ``dispatch`` script once per ``(queue, command arguments)``, all in one pipelined round trip: the
    Redis layout stays exactly Dramatiq's. No maintenance runs from here (Dramatiq's own fetches do it).

    The script is called by its SHA (``EVALSHA``), not as a redis-py ``Script`` object: a pipeline holding
    ``Script`` calls first asks ``SCRIPT EXISTS`` in a round trip of its own, which for a batch of two or three
    acks was half the cost. If Redis has lost its script cache (a restart, ``SCRIPT FLUSH``), nothing ran, the
    script is loaded and the batch sent once more.
    """
    script: Any = broker.scripts["dispatch"]  # a redis-py Script: .sha and .script
    max_unpack = broker._max_unpack_size()  # type: ignore[no-untyped-call]

    def send() -> list[Any]:
        pipe = broker.client.pipeline(transaction=False)
        for queue_name, arguments in calls:
            header = [command, current_millis(), queue_name, broker.broker_id, broker.heartbeat_timeout]
            tail = [broker.dead_message_ttl, 0, max_unpack, *arguments]
            pipe.evalsha(script.sha, 1, broker.namespace, *header, *tail)
        return list(pipe.execute())

    try:
        return send()
    except NoScriptError:
        broker.client.script_load(script.script)
        return send()
