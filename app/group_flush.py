"""Leader/follower batching: whoever finds no flush in progress flushes, for everyone, what was queued meanwhile.

Eight worker threads each acking their message with a round trip of its own hand the GIL over twice per ack,
and on a CPU-bound worker those hand-offs cost more than the Redis work. With :class:`GroupFlush` a thread that
arrives while another is flushing only queues its item and goes on; the flushing thread sends everything queued
in one pipelined round trip and loops until nothing is left, so no item waits for a later caller.

An item is durable only once flushed: a process killed in between loses the queued items, as it would lose an
ack that was about to be sent (the message is redelivered: at-least-once, as before). A failed flush puts its
items back in front of the queue and raises to its caller, whose retry flushes them again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupFlush(Generic[T]):
    def __init__(self, flush: Callable[[Sequence[T]], object]) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._queued: list[T] = []
        self._flushing = False

    def submit(self, item: T) -> None:
        """Queue ``item``; flush it (and whatever else is queued) unless another thread is flushing already."""
        with self._lock:
            self._queued.append(item)
            if self._flushing:
                return
            self._flushing = True
        batch: list[T] = []
        try:
            while True:
                with self._lock:
                    batch, self._queued = self._queued, []
                    if not batch:
                        self._flushing = False
                        return
                self._flush(batch)
        except BaseException:
            with self._lock:
                self._queued[:0] = batch
                self._flushing = False
            raise

    def pending(self) -> int:
        """Items queued and not flushed yet (for tests and shutdown checks)."""
        with self._lock:
            return len(self._queued)
