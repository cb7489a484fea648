"""The outbox relay as a thread of the leading scheduler replica, so that no deployment needs a ``jobs relay``.

It runs exactly while the replica leads: the engine starts it when a step finds the lock held and asks it to
stop at the first step that does not (lease lost, Redis gone) and on SIGTERM, before the lock is released. The
thread also checks the lease (in memory, no Redis call) before every batch, so a leader that lost its lease
between two steps stops relaying after the batch in hand.

Overlap is safe rather than prevented. On PostgreSQL :func:`app.outbox.relay_once` selects its rows ``FOR UPDATE
SKIP LOCKED`` and marks them in the same transaction, so an old leader finishing a batch, the new leader, and a
standalone ``jobs relay`` never publish the same row; a process killed between publish and commit leaves its
rows unmarked and they are published again under the same message id, which the consumers' idempotency
absorbs (as for ``jobs relay`` alone). SQLite has no row locks: there, run one relay only.
"""

from __future__ import annotations

import logging
import threading

from app.db.session import session_scope
from app.outbox import relay_once
from app.scheduler.engine import STEP_ERRORS
from app.scheduler.leader import LeaderLock

logger = logging.getLogger(__name__)

#: Seconds between polls of an empty outbox (``jobs relay``'s default ``--interval``).
POLL_S = 0.5
#: How long a stopping scheduler waits for the batch in hand before it releases the lock.
STOP_TIMEOUT_S = 10.0


class LeaderRelay:
    """Starts and stops the relay thread as :meth:`follow` is told whether the replica leads."""

    def __init__(self, lock: LeaderLock, *, poll_s: float = POLL_S) -> None:
        self.lock = lock
        self.poll_s = poll_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def follow(self, leading: bool) -> None:
        """Start the thread on gaining leadership, signal it to stop on losing it; never blocks the engine.

        A thread still finishing its batch after a lost lease is left to end before a new one starts (next step).
        """
        if leading:
            if not self.running():
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._loop, args=(self._stop,), name="scheduler-outbox-relay", daemon=True
                )
                self._thread.start()
                logger.info(
                    "outbox relay started", extra={"action": "relay_started", "replica": self.lock.replica}
                )
        elif self.running() and not self._stop.is_set():
            self._stop.set()
            logger.info(
                "outbox relay stopping", extra={"action": "relay_stopping", "replica": self.lock.replica}
            )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop and wait for the batch in hand (shutdown: before the lock is released)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set() and self.lock.leading():
            try:
                with session_scope() as session:
                    published = relay_once(session)
            except STEP_ERRORS:
                # The database or Redis failed: the rows stay unpublished (or unmarked) and the next batch retries.
                logger.exception("outbox relay batch failed", extra={"action": "relay_failed"})
                published = 0
            if published:
                logger.debug(
                    "outbox entries published",
                    extra={"action": "relay_published", "count": published, "replica": self.lock.replica},
                )
            else:
                stop.wait(self.poll_s)
        logger.info("outbox relay stopped", extra={"action": "relay_stopped", "replica": self.lock.replica})
