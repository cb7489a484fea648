"""Batching by time: any thread queues an item; one daemon thread sends what is pending a few ms later.

The one batcher of the platform: Redis acks, log lines and job-history events all go through it. Worker threads
acking their message with a round trip each (or writing each log line, or upserting each history row) hand the
GIL over at every call, and on a CPU-bound worker those hand-offs cost more than the work. A background thread
that wakes when the first item arrives, waits ``interval`` seconds for others to join it (or less, once
``max_batch`` items are waiting) and then flushes them does the same work in a handful of calls a second, while
the worker thread goes straight to its next message. (Flushing in groups only while another thread was
flushing, with no wait, gained less: the groups were two or three items.)

An item counts only once flushed. A process killed in between loses what is queued: for an ack, the message
is redelivered, at-least-once, exactly as when a kill lands just before Dramatiq's own ack; for history or log
lines, they are lost (both are best effort). A failed flush keeps its items, in order, and the thread retries
them every ``retry_delay`` seconds: for as long as the process lives by default (as Dramatiq retries a failed
ack), or until ``max_attempts`` flushes of them have failed, when they are handed to ``on_drop`` (which logs a
warning by default) so that a broken sink never holds memory or a thread forever.

:meth:`flush_now` sends what is pending from the caller's thread; :meth:`close` stops the thread and sends the
rest within a timeout, for a graceful shutdown. Neither is final: a later :meth:`submit` starts a thread again
(a middleware may see a worker boot twice in one process). A forked child starts empty (what was queued belongs
to its parent, which flushes it) and starts its own thread on its first item.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: Seconds :meth:`TimedFlush.close` waits for the thread's last flush by default.
CLOSE_TIMEOUT_S = 5.0
#: Seconds an idle thread sleeps between two looks at whether it was stopped.
_IDLE_CHECK_S = 1.0


def _warn_dropped(name: str, items: int, error: BaseException) -> None:
    logger.warning(
        "flush failed too often, batch dropped",
        extra={"flusher": name, "items": items, "error": f"{type(error).__name__}: {error}"},
    )


class TimedFlush(Generic[T]):
    """Queues items from any thread; one daemon thread flushes them in batches (see the module docstring).

    ``flush`` receives at most ``max_batch`` items per call (all that are pending when ``None``) and raises to
    signal a failure; ``on_drop(items, error)`` is called instead of ``flush`` ever seeing them again once
    ``max_attempts`` consecutive flushes have failed (``None``: retry forever).
    """

    def __init__(
        self,
        flush: Callable[[Sequence[T]], object],
        *,
        interval: float,
        name: str,
        retry_delay: float = 1.0,
        max_batch: int | None = None,
        max_attempts: int | None = None,
        on_drop: Callable[[Sequence[T], BaseException], object] | None = None,
    ) -> None:
        if max_batch is not None and max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.name = name
        self._flush = flush
        self._interval = interval
        self._retry_delay = retry_delay
        self._max_batch = max_batch
        self._max_attempts = max_attempts
        self._on_drop = on_drop
        self._reset()
        _instances.add(self)

    def _reset(self) -> None:
        """Fresh state: at construction and in a forked child (whose locks may have been held at the fork)."""
        # Starts and stops the thread; submit() takes no lock (below).
        self._lock = threading.Lock()
        # Held while a batch is out, so that flush_now returns only after everything submitted before it landed;
        # also the only place items leave the deque.
        self._flushing = threading.Lock()
        # A deque's append and popleft are atomic: the job threads queue without a lock of their own, which they
        # could be preempted holding (and then every other job thread would queue behind it).
        self._queued: deque[T] = deque()
        self._failures = 0  # consecutive failed flushes of the batch at the front
        self._wake = threading.Event()  # something is queued
        self._full = threading.Event()  # max_batch items are queued: do not wait for the interval
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    def submit(self, item: T) -> None:
        """Queue ``item`` for the next flush, ``interval`` seconds away while the flushes succeed."""
        queued = self._queued
        queued.append(item)
        # A flush clears _wake before it takes items: an item it does not take finds _wake clear and sets it.
        if not self._wake.is_set():
            self._wake.set()
        if self._max_batch is not None and len(queued) >= self._max_batch and not self._full.is_set():
            self._full.set()
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name=self.name, daemon=True
                )
                self._thread.start()

    def pending(self) -> int:
        """Items queued and not flushed yet."""
        return len(self._queued)

    def flush_now(self) -> int:
        """Send what was pending when called from this thread, in batches; returns how many items were sent.

        Raises what the flush raised: the failed batch is kept for the next try, or dropped (``on_drop``) if
        that was its ``max_attempts``-th failure.
        """
        sent = 0
        with self._flushing:
            # Only what is here now: items arriving meanwhile wait for the next round, so that a busy producer
            # neither keeps this caller flushing nor turns the thread's batches into a stream of tiny ones.
            # At least one round even with nothing due: taking clears a wake-up left by an item already flushed.
            due = len(self._queued)
            while True:
                count = self._flush_one()
                sent += count
                if not count or sent >= due:
                    return sent

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> int:
        """Stop the thread and flush what is pending (a graceful stop); returns how many items were left.

        Items are left only when a flush is still running after ``timeout`` seconds (a hung sink) or fails and
        the failure policy keeps them; a warning says so. Never raises for a failed flush.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
        if stop is not None:
            stop.set()
            self._wake.set()
            self._full.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        while self.pending():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._flushing.acquire(timeout=remaining):
                break
            try:
                self._flush_one()
            except Exception:  # kept or dropped by the policy; either way this stop goes on
                if self._max_attempts is None:
                    break  # kept: retrying it here could block the stop for as long as the sink is down
            finally:
                self._flushing.release()
        left = self.pending()
        if left:
            logger.warning("items not flushed at close", extra={"flusher": self.name, "pending": left})
        return left

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            # The timeout only bounds how long a thread outlives a close() whose wake-up another flush cleared.
            if not self._wake.wait(_IDLE_CHECK_S):
                continue
            self._full.wait(self._interval)  # let the other threads add theirs to the same flush
            if stop.is_set():
                return  # close() flushes the rest from its own thread
            try:
                self.flush_now()
            except Exception:
                if self._failures:  # kept for another attempt (a dropped batch reset the count)
                    logger.warning(
                        "flush failed, retrying",
                        extra={"flusher": self.name, "pending": self.pending()},
                        exc_info=True,
                    )
                if stop.wait(self._retry_delay):
                    return

    def _take(self) -> list[T]:
        """Up to ``max_batch`` items from the front (the caller holds ``_flushing``)."""
        self._wake.clear()
        self._full.clear()
        queued = self._queued
        batch: list[T] = []
        limit = self._max_batch or len(queued)
        try:
            while len(batch) < limit:
                batch.append(queued.popleft())
        except IndexError:
            pass  # fewer than the limit were queued
        if queued:  # left for the next batch: keep the thread awake
            self._wake.set()
            if self._max_batch is not None and len(queued) >= self._max_batch:
                self._full.set()
        return batch

    def _flush_one(self) -> int:
        """Flush one batch (the caller holds ``_flushing``); returns its size, 0 if nothing was pending."""
        batch = self._take()
        if not batch:
            return 0
        try:
            self._flush(batch)
        except BaseException as err:
            self._failures += 1
            if self._max_attempts is not None and self._failures >= self._max_attempts:
                self._failures = 0
                if self._on_drop is None:
                    _warn_dropped(self.name, len(batch), err)
                else:
                    self._on_drop(batch, err)
            else:
                self._queued.extendleft(reversed(batch))
                self._wake.set()
                if self._max_batch is not None and len(self._queued) >= self._max_batch:
                    self._full.set()
            raise
        self._failures = 0
        return len(batch)


#: Every flusher of the process, reset in a forked child (its thread does not exist there).
_instances: weakref.WeakSet[TimedFlush[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for flusher in list(_instances):
        flusher._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
