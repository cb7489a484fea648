"""The platform's Redis broker: Dramatiq's, with poison-safe consumers and batched acks, built in one way.

:func:`build_redis_broker` is the one place that sets the namespace and the heartbeat timeout, so that the
workers' broker and a web process's publishing broker agree on which workers are dead (docs/dramatiq.md
"Crash recovery").
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import redis
from dramatiq.broker import Broker, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from app.constants import DRAMATIQ_HEARTBEAT_TIMEOUT_MS, DRAMATIQ_NAMESPACE
from app.timed_flush import TimedFlush
from app.transport import wakeup
from app.transport.consumer import PoisonHandler, PoisonSafeConsumer
from app.transport.dispatch import dispatch_pipelined
from app.transport.held import HeldMessages

#: How long the first queued ack waits for others to join its round trip. Short next to anything that watches
#: acks (the heartbeat timeout is seconds); long enough to batch a busy worker's acks.
ACK_FLUSH_INTERVAL_S = 0.005


class PlatformRedisBroker(RedisBroker):  # type: ignore[misc]
    """The Redis broker whose consumers quarantine poison payloads instead of looping on them, wait on Redis for
    the next message instead of sleeping, and requeue after a reconnect what their predecessor held
    (:mod:`app.transport.consumer`); every enqueue signals its queue's wake-up key."""

    def __init__(self, *, poison_handler: PoisonHandler | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.poison_handler = poison_handler
        self._ack_flushers: dict[str, TimedFlush[str]] = {}
        self._ack_flushers_lock = threading.Lock()
        #: What this process's consumers handed out and have not settled (see app.transport.held).
        self.held = HeldMessages()
        self._left_unacked: set[str] = set()

    @functools.cached_property
    def waiting_client(self) -> redis.Redis[Any]:
        """The client idle consumers block on (a pool of its own, :func:`app.transport.wakeup.waiting_client`)."""
        return wakeup.waiting_client(self.client)

    def do_enqueue(self, queue_name: str, redis_id: str, data: bytes) -> None:
        """Dramatiq's enqueue (its script, with its chance of maintenance) and the queue's wake-up signal, in
        one round trip. ``RedisBroker.enqueue`` and the consumer thread's move of a due delayed message call
        this."""
        dispatch_pipelined(
            self,
            "enqueue",
            [(queue_name, [redis_id, data])],
            maintenance=bool(self._should_do_maintenance("enqueue")),
            wake={queue_name: 1},
        )

    def requeue_ids(self, queue_name: str, redis_ids: Sequence[str]) -> None:
        """Dramatiq's requeue of these fetched ids (back from this worker's acks set to the queue) and the
        queue's wake-up signal, in one round trip."""
        if redis_ids:
            dispatch_pipelined(
                self, "requeue", [(queue_name, list(redis_ids))], wake={queue_name: len(redis_ids)}
            )

    def leave_unacked(self, redis_id: str) -> None:
        """Skip the ack of this fetched message: it stays in the acks set and returns to its queue when this
        worker stops or is found dead (see :func:`app.transport.leave_unacked`)."""
        self._left_unacked.add(redis_id)

    def is_left_unacked(self, redis_id: str) -> bool:
        return redis_id in self._left_unacked

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
        self.held.release(queue_name, redis_ids)

    @property
    def consumer_class(self) -> type[PoisonSafeConsumer]:
        return PoisonSafeConsumer


def leave_unacked(broker: Broker, message: MessageProxy) -> bool:
    """Have the worker skip the ack of ``message`` after its attempt: it stays fetched (in this worker's acks
    set) and returns to its queue when the worker stops, or when the sweep finds the worker dead.

    For a message whose follow-up (a retry) could not be stored: acking it would lose it. Returns False on a
    broker that cannot do this (it will ack as usual).
    """
    if not isinstance(broker, PlatformRedisBroker):
        return False
    broker.leave_unacked(message.options["redis_message_id"])
    return True


def build_redis_broker(
    url: str, *, middleware: list[Middleware] | None = None, poison_handler: PoisonHandler | None = None
) -> PlatformRedisBroker:
    """The platform's Redis broker on ``url``: Dramatiq's namespace and the platform's heartbeat timeout."""
    return PlatformRedisBroker(
        url=url,
        middleware=middleware if middleware is not None else [],
        namespace=DRAMATIQ_NAMESPACE,
        heartbeat_timeout=DRAMATIQ_HEARTBEAT_TIMEOUT_MS,
        poison_handler=poison_handler,
    )
