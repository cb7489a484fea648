"""Dramatiq's Redis broker, made safe against poison payloads.

Dramatiq's consumer decodes without catching ``DecodeError``: the consumer thread restarts, the bad id stays in
its acks set and comes back whenever the worker dies (a poison loop, DRAMATIQ-NOTES.md). Here an undecodable
payload is archived as a dead letter with its raw bytes and removed; if the archive is unreachable it is moved
to Dramatiq's XQ instead, where ``jobs dlq sync`` finds it later. Either way the worker goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import DecodeError

logger = logging.getLogger(__name__)

#: Called with (queue, redis id, raw payload, error); returns True when the payload was archived durably.
PoisonHandler = Callable[[str, str, bytes, Exception], bool]


class PoisonSafeConsumer(_RedisConsumer):  # type: ignore[misc]
    """A consumer that hands undecodable payloads to its broker's ``poison_handler``."""

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

    @property
    def consumer_class(self) -> type[PoisonSafeConsumer]:
        return PoisonSafeConsumer
