"""The broker module that a ``jobs worker`` group names on Dramatiq's command line (instead of ``app.broker``).

Dramatiq's main process forks its worker processes, and each imports this module first. Importing it ties the
worker process to the main process (SIGTERM when the main process dies, :mod:`app.parent_death`) before the
broker and the actors load: a SIGKILLed main process no longer leaves its workers consuming. SIGTERM is
Dramatiq's graceful stop for a worker process: its running jobs get the shutdown timeout and its prefetched
messages are requeued at once. If the main process died before the signal was armed, the worker exits here,
before it has fetched anything.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys

from app.parent_death import die_with_parent

logger = logging.getLogger(__name__)


def tie_to_main_process() -> None:
    """In a process forked by ``multiprocessing`` (Dramatiq's worker processes), die with the forking parent."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return
    if not die_with_parent(parent.pid):
        logger.warning(
            "Dramatiq's main process gone before this worker process started; exiting",
            extra={"action": "main_process_gone", "main_pid": parent.pid},
        )
        sys.exit(1)


tie_to_main_process()

from app.broker import broker  # noqa: E402  (after the tie: a worker must not consume once orphaned)

__all__ = ["broker"]
