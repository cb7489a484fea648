"""One page ahead: fetch page k+1 while the caller stores page k.

A partition waits on SAM.gov for most of each page (hundreds of milliseconds) and then stores it; overlapping the
two saves the storing time on every page. The pages are produced by a thread of their own into a queue of one,
so at most three pages are in memory (the one stored, the one queued, the one being fetched): memory stays
bounded by a page, not by the partition. An error of the fetch is raised to the caller after the pages before it,
in order; a caller that stops early (its store failed) stops the fetching thread before it sends another request.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

#: Seconds the fetching thread waits for room in the queue before checking whether it should stop.
POLL_S = 0.1
_END = object()


def prefetched(pages: Iterator[T]) -> Iterator[T]:
    """``pages`` in order, each fetched while the previous one is being used."""
    slot: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        item: object = _END
        try:
            for page in pages:
                if not _offer(slot, page, stop):
                    return
            item = _END
        except BaseException as err:  # handed to the consumer, which re-raises it in its own thread
            item = err
        _offer(slot, item, stop)

    thread = threading.Thread(target=produce, name="sync-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slot.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _offer(slot: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            slot.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            continue
    return False
