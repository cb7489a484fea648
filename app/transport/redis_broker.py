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

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from app.constants import DRAMATIQ_HEARTBEAT_TIMEOUT_MS, DRAMATIQ_NAMESPACE
from app.timed_flush import TimedFlush
from app.transport.consumer import PoisonHandler, PoisonSafeConsumer
from app.transport.dispatch import dispatch_pipelined

#: How long the first queued ack waits for others to join its round trip. Short next to anything that watches
#: acks (the heartbeat timeout is seconds); long enough to batch a busy worker's acks.
ACK_FLUSH_INTERVAL_S = 0.005


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
