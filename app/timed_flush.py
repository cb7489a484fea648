"""Batching by time: any thread queues an item; one daemon thread sends what is pending a few ms later.

Worker threads acking their message with a round trip each hand the GIL over twice per ack, and on a CPU-bound
worker those hand-offs cost more than the Redis work. A background thread that wakes when the first item
arrives, waits ``interval`` seconds for others to join it and then flushes them all does the same work in a
handful of round trips a second, while the worker thread goes straight to its next message. (Flushing in
groups only while another thread was flushing, with no wait, gained less: the groups were two or three items.)

An item counts only once flushed. A process killed in between loses what is queued: for an ack, the message
is redelivered, at-least-once, exactly as when a kill lands just before Dramatiq's own ack. A failed flush keeps
its items, in order, and the thread retries every ``retry_delay`` seconds for as long as the process lives (as
Dramatiq retries a failed ack); :meth:`flush_now` sends what is pending from the caller's thread, for a graceful
shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)


class TimedFlush(Generic[T]):
    def __init__(
        self,
        flush: Callable[[Sequence[T]], object],
        *,
        interval: float,
        name: str,
        retry_delay: float = 1.0,
    ) -> None:
        self.name = name
        self._flush = flush
        self._interval = interval
        self._retry_delay = retry_delay
        self._lock = threading.Lock()
        # Held while a batch is out, so that flush_now returns only after everything submitted before it landed.
        self._flushing = threading.Lock()
        self._queued: list[T] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, item: T) -> None:
        """Queue ``item`` for the next flush, ``interval`` seconds away while the flushes succeed."""
        with self._lock:
            self._queued.append(item)
            if len(self._queued) == 1:
                self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def pending(self) -> int:
        """Items queued and not flushed yet."""
        with self._lock:
            return len(self._queued)

    def flush_now(self) -> None:
        """Send what is pending from this thread; raises (keeping the items for the next try) if that fails."""
        with self._flushing:
            self._flush_pending()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self._interval)  # let the other threads add theirs to the same round trip
            try:
                self.flush_now()
            except Exception:
                logger.warning(
                    "flush failed, retrying",
                    extra={"flusher": self.name, "pending": self.pending()},
                    exc_info=True,
                )
                time.sleep(self._retry_delay)

    def _flush_pending(self) -> None:
        with self._lock:
            batch, self._queued = self._queued, []
            self._wake.clear()
        if not batch:
            return
        try:
            self._flush(batch)
        except BaseException:
            with self._lock:
                self._queued[:0] = batch
                self._wake.set()
            raise
