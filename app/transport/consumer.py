"""Dramatiq's Redis consumer, made safe against poison payloads, batching its acks, woken by enqueues, and
returning after a reconnect whatever its predecessor held.

Dramatiq's consumer decodes without catching ``DecodeError``: the consumer thread restarts, the bad id stays in
its acks set and comes back whenever the worker dies (a poison loop, docs/dramatiq.md). Here an undecodable
payload is archived as a dead letter with its raw bytes and removed; if the archive is unreachable it is moved
to Dramatiq's XQ instead, where ``jobs dlq sync`` finds it later. Either way the worker goes on.

Dramatiq's consumer sleeps up to the worker timeout when its queue is empty; this one blocks on the queue's
wake-up key instead (:mod:`app.transport.wakeup`), so the first message after a quiet spell starts at once.

On a connection error Dramatiq's consumer thread drops its consumer (and the messages it had prefetched) and its
in-memory delay queue (Dramatiq issue #527), while their ids stay in this worker's acks set, which no sweep
empties while the worker heartbeats. Each consumer after the first of its queue therefore starts by requeueing
the ids of its acks set that nothing in the process holds any more (:mod:`app.transport.held`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed, DecodeError

from app.transport import wakeup
from app.transport.maintenance import unfinished_message_ids

if TYPE_CHECKING:
    from app.transport.redis_broker import PlatformRedisBroker

logger = logging.getLogger(__name__)

#: Called with (queue, redis id, raw payload, error); returns True when the payload was archived durably.
PoisonHandler = Callable[[str, str, bytes, Exception], bool]

#: An idle consumer fetches at least this often even if nothing woke it: messages put back on a queue without a
#: wake-up signal (a dead worker's, requeued by Dramatiq's maintenance script) wait at most this long.
SAFETY_FETCH_S = 5.0

_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class PoisonSafeConsumer(_RedisConsumer):  # type: ignore[misc]
    """A consumer that hands undecodable payloads to its broker's ``poison_handler``, batches its acks, waits
    for its queue's wake-up signal when idle and, when it replaces another, requeues what was lost with it.

    Dramatiq's worker threads ack one message per round trip; here an ack is queued for the broker's ack flusher
    of this queue (:meth:`PlatformRedisBroker.ack_flusher`), which sends the acks of every thread in one
    pipelined round trip a few milliseconds later. Closing the consumer (a graceful worker stop) sends what is
    still queued.
    """

    def __init__(self, broker: PlatformRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self._acks = broker.ack_flusher(queue_name)
        self._held = broker.held
        # Dramatiq's consumer thread creates its consumer from its own run loop: its in-memory delay queue is
        # the only place the delayed messages handed out by this queue's consumers are held.
        self._thread = threading.current_thread()
        if queue_name.endswith(".DQ") and self._delay_queue() is not None:
            self._held.replace_held(queue_name, self._delayed_ids())
        self._recovering = self._held.consumer_opened(queue_name)
        self._closed = False
        self._freed = threading.Event()
        self._last_fetch = -SAFETY_FETCH_S
        self._maybe_more = True
        self._woken = False

    # -- acks, nacks, requeues: an id stops being held once Redis has confirmed it

    def ack(self, message: MessageProxy) -> None:
        redis_id = message.options["redis_message_id"]
        if self.broker.is_left_unacked(redis_id):
            logger.warning(
                "message left unacked on purpose", extra={"queue": self.queue_name, "redis_id": redis_id}
            )
        else:
            self._held.acking(self.queue_name, redis_id)
            self._acks.submit(redis_id)
        self.queued_message_ids.discard(message.message_id)
        self._freed.set()

    def nack(self, message: MessageProxy) -> None:
        try:
            super().nack(message)  # type: ignore[no-untyped-call]
        finally:
            self._freed.set()
        self._held.release(self.queue_name, [message.options["redis_message_id"]])

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        redis_ids = [message.options["redis_message_id"] for message in messages]
        if not redis_ids:
            return
        try:
            self.broker.requeue_ids(self.queue_name, redis_ids)
        except _REDIS_DOWN as err:
            raise ConnectionClosed(err) from None  # type: ignore[no-untyped-call]
        self._held.release(self.queue_name, redis_ids)

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
        if not self._closed:
            self._closed = True
            self._held.consumer_closed(self.queue_name)
        super().close()

    # -- fetching

    def __next__(self) -> MessageProxy | None:
        """The next message, or None after waiting at most the worker timeout (the consumer thread's tick).

        An idle consumer does not sleep: it blocks on its queue's wake-up key, and fetches again only when woken,
        when its last fetch filled the room it asked for (more may be waiting), or every :data:`SAFETY_FETCH_S`.
        A consumer whose prefetch is all taken waits for an ack instead. A delay-queue consumer never waits past
        the earliest eta it holds, so that its thread moves a due message at once.
        """
        try:
            if self._recovering:
                self._return_lost()
                self._recovering = False
            while True:
                if self.message_cache:
                    proxy = self._take(self.message_cache.pop(0))
                    if proxy is not None:
                        return proxy
                    continue
                room = self.prefetch - self.outstanding_message_count
                if room <= 0:
                    self._freed.wait(self._wait_s())
                    self._freed.clear()
                    return None
                if self._should_fetch():
                    self.message_cache = list(self.broker.do_fetch(self.queue_name, room))
                    self._last_fetch = time.monotonic()
                    self._maybe_more = len(self.message_cache) >= room
                    self._woken = False
                    if self.message_cache:
                        continue
                self._woken = wakeup.wait(
                    self.broker.waiting_client, self.broker.namespace, self.queue_name, self._wait_s()
                )
                return None
        except _REDIS_DOWN as err:
            raise ConnectionClosed(err) from None  # type: ignore[no-untyped-call]

    def _take(self, data: Any) -> MessageProxy | None:
        if data is None:  # Dramatiq guards against this too (its issue #266)
            return None
        try:
            message = Message.decode(data)
        except DecodeError as err:
            self._quarantine(err)
            return None
        self.queued_message_ids.add(message.message_id)
        self._held.hand_out(self.queue_name, message.options["redis_message_id"])
        return MessageProxy(message)

    def _should_fetch(self) -> bool:
        return self._woken or self._maybe_more or time.monotonic() - self._last_fetch >= SAFETY_FETCH_S

    def _wait_s(self) -> float:
        wait_s = self.timeout / 1000
        delay_queue = self._delay_queue()
        if delay_queue is not None and delay_queue.queue:
            wait_s = min(wait_s, (delay_queue.queue[0].priority - current_millis()) / 1000)
        return max(float(wait_s), 0.0)

    def _delay_queue(self) -> Any:
        """The consumer thread's in-memory delay queue (a PriorityQueue of (eta, message) items), if any."""
        return getattr(self._thread, "delay_queue", None)

    def _delayed_ids(self) -> list[str]:
        delay_queue = self._delay_queue()
        items = list(delay_queue.queue) if delay_queue is not None else []
        return [item.message.options["redis_message_id"] for item in items]

    def _return_lost(self) -> None:
        """Requeue the ids of this worker's acks set that nothing in the process holds (see the module doc)."""
        held = self._held.snapshot(self.queue_name)  # before reading the set: see HeldMessages.snapshot
        lost = [i for i in unfinished_message_ids(self.broker, self.queue_name) if i not in held]
        if lost:
            self.broker.requeue_ids(self.queue_name, lost)
            logger.warning(
                "messages dropped on a reconnect requeued",
                extra={"queue": self.queue_name, "count": len(lost)},
            )

    # -- poison payloads

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
