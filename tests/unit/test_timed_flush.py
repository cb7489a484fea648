"""Batching by time: every item flushed exactly once and in order, in few batches, failed flushes retried."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from app.timed_flush import TimedFlush
from tests.support.worker import wait_for


class Sink:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.failures = failures
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("sink unavailable")
            self.batches.append(list(items))

    def flushed(self) -> list[int]:
        with self.lock:
            return [item for batch in self.batches for item in batch]


def test_items_from_many_threads_are_flushed_once_each_in_few_batches() -> None:
    sink = Sink()
    flusher: TimedFlush[int] = TimedFlush(sink, interval=0.01, name="test")
    threads = [
        threading.Thread(target=lambda t=t: [flusher.submit(t * 1000 + n) for n in range(250)])
        for t in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    wait_for(lambda: len(sink.flushed()) >= 2000, timeout=10, what="every item flushed")
    assert sorted(sink.flushed()) == sorted(t * 1000 + n for t in range(8) for n in range(250))
    assert len(sink.batches) < 2000 / 10, "items are sent in batches, not one by one"
    assert flusher.pending() == 0


def test_nothing_is_flushed_before_the_interval_and_everything_after() -> None:
    sink = Sink()
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test")
    flusher.submit(1)
    flusher.submit(2)
    assert sink.batches == [] and flusher.pending() == 2
    flusher.flush_now()
    assert sink.batches == [[1, 2]] and flusher.pending() == 0


def test_a_failed_flush_keeps_its_items_in_order_and_the_thread_retries() -> None:
    sink = Sink(failures=2)
    flusher: TimedFlush[int] = TimedFlush(sink, interval=0.001, name="test", retry_delay=0.01)
    for item in range(5):
        flusher.submit(item)
    wait_for(lambda: sink.flushed() == [0, 1, 2, 3, 4], timeout=10, what="the batch after two failures")
    assert sink.failures == 0 and flusher.pending() == 0


def test_flush_now_raises_and_keeps_the_items_when_the_sink_fails() -> None:
    sink = Sink(failures=1)
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test")
    flusher.submit(7)
    with pytest.raises(ConnectionError):
        flusher.flush_now()
    assert flusher.pending() == 1
    flusher.flush_now()
    assert sink.batches == [[7]]
