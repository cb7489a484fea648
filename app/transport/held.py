"""Which fetched messages some part of this process still holds, so that a reconnect can return the rest.

Everything a worker fetches stays in its acks set until acked. Dramatiq's consumer thread, on a Redis connection
error, drops the old consumer (its prefetched messages with it) and replaces its in-memory delay queue with an
empty one (Dramatiq issue #527): those ids stay in the acks set and, since the worker keeps heartbeating, no
sweep ever returns them. This registry knows, per queue, the redis ids handed to the consumer thread and not yet
acked, nacked or requeued (an ack counts once Redis confirmed it), so that a new consumer can requeue exactly
the ids of its acks set that nothing in the process holds any more (:meth:`lost`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class HeldMessages:
    """Per queue: ids handed out (``held``) and ids whose ack is sent but not confirmed (``acking``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}
        self._acking: dict[str, set[str]] = {}
        self._created: dict[str, int] = {}
        self._open: dict[str, int] = {}

    def consumer_opened(self, queue_name: str) -> bool:
        """Count a new consumer of ``queue_name``; True when it replaces a closed one (a restart, the case to
        recover from) and no other consumer of the queue is open in the process (whose prefetched messages,
        not handed out yet, the registry cannot tell from lost ones)."""
        with self._lock:
            replaces = self._created.get(queue_name, 0) > 0 and self._open.get(queue_name, 0) == 0
            self._created[queue_name] = self._created.get(queue_name, 0) + 1
            self._open[queue_name] = self._open.get(queue_name, 0) + 1
            return replaces

    def consumer_closed(self, queue_name: str) -> None:
        with self._lock:
            self._open[queue_name] = max(self._open.get(queue_name, 0) - 1, 0)

    def hand_out(self, queue_name: str, redis_id: str) -> None:
        with self._lock:
            self._held.setdefault(queue_name, set()).add(redis_id)

    def acking(self, queue_name: str, redis_id: str) -> None:
        with self._lock:
            self._held.setdefault(queue_name, set()).discard(redis_id)
            self._acking.setdefault(queue_name, set()).add(redis_id)

    def release(self, queue_name: str, redis_ids: Iterable[str]) -> None:
        """Redis has confirmed the ack, nack or requeue of these ids."""
        with self._lock:
            for ids in (self._held.get(queue_name), self._acking.get(queue_name)):
                if ids:
                    ids.difference_update(redis_ids)

    def replace_held(self, queue_name: str, redis_ids: Iterable[str]) -> None:
        """Only these ids are held now (a delay queue's content after the consumer thread replaced it)."""
        with self._lock:
            self._held[queue_name] = set(redis_ids)

    def snapshot(self, queue_name: str) -> set[str]:
        """The ids held or being acked now. Take it *before* reading the acks set: an id missing from it was
        either never handed out or its ack was confirmed (so it has left the set) before the set is read."""
        with self._lock:
            return set(self._held.get(queue_name, ())) | set(self._acking.get(queue_name, ()))
