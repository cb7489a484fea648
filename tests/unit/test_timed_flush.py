"""Batching by time: every item flushed exactly once and in order, in few batches, failed flushes retried."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence

import pytest

from app.timed_flush import TimedFlush
from tests.support.helpers import wait_for


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


def test_nothing_is_flushed_before_the_interval_and_flush_now_sends_everything() -> None:
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


class CountingSink(Sink):
    """A sink that fails ``failures`` times (forever with ``None``) and counts every call."""

    def __init__(self, failures: int | None = None) -> None:
        super().__init__()
        self.failing = failures
        self.calls = 0

    def __call__(self, items: Sequence[int]) -> None:
        with self.lock:
            self.calls += 1
            if self.failing is None or self.failing > 0:
                if self.failing is not None:
                    self.failing -= 1
                raise ConnectionError("sink unavailable")
            self.batches.append(list(items))


def test_a_wake_up_left_over_with_nothing_queued_is_cleared_instead_of_waking_the_thread_again_and_again() -> (
    None
):
    # Given an idle flusher whose thread has flushed everything
    sink = Sink()
    flusher: TimedFlush[int] = TimedFlush(sink, interval=0.001, name="test")
    flusher.submit(1)
    wait_for(lambda: sink.flushed() == [1], timeout=10, what="the item flushed")
    # When a wake-up arrives with nothing queued (a submitter that set it after its item was taken)
    flusher._wake.set()
    # Then the thread's next round clears it, and flushes nothing
    wait_for(lambda: not flusher._wake.is_set(), timeout=10, what="the wake-up cleared")
    assert sink.batches == [[1]]


def test_a_full_batch_is_flushed_without_waiting_for_the_interval_and_no_batch_exceeds_the_maximum() -> None:
    # Given a flusher that would wait a minute, but flushes as soon as 10 items are waiting
    sink = Sink()
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test", max_batch=10)
    # When 20 items are queued
    for item in range(20):
        flusher.submit(item)
    # Then the thread flushes them long before the minute, in batches of at most 10
    wait_for(lambda: len(sink.flushed()) >= 20, timeout=10, what="the full batches")
    assert sink.flushed() == list(range(20))
    assert all(len(batch) <= 10 for batch in sink.batches), sink.batches
    assert flusher.pending() == 0


def test_flush_now_sends_at_most_max_batch_items_per_call_of_the_sink() -> None:
    sink = Sink()
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test", max_batch=4)
    flusher._queued.extend(range(10))  # queued without starting the thread, to see flush_now split them
    assert flusher.flush_now() == 10
    assert [len(batch) for batch in sink.batches] == [4, 4, 2]
    assert sink.flushed() == list(range(10))


def test_a_batch_failing_max_attempts_times_is_dropped_and_handed_to_on_drop() -> None:
    # Given a sink that never works and a flusher that gives up after 3 attempts
    sink = CountingSink(failures=None)
    dropped: list[tuple[list[int], str]] = []
    flusher: TimedFlush[int] = TimedFlush(
        sink,
        interval=0.001,
        name="test",
        retry_delay=0.001,
        max_attempts=3,
        on_drop=lambda items, err: dropped.append((list(items), type(err).__name__)),
    )
    # When items are queued
    for item in range(3):
        flusher.submit(item)
    # Then they are dropped after exactly 3 attempts, not retried forever
    wait_for(lambda: dropped, timeout=10, what="the batch dropped")
    assert dropped == [([0, 1, 2], "ConnectionError")]
    assert sink.calls == 3 and flusher.pending() == 0


def test_a_dropped_batch_is_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    sink = CountingSink(failures=None)
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test", max_attempts=1)
    flusher.submit(1)
    with caplog.at_level("WARNING", logger="app.timed_flush"), pytest.raises(ConnectionError):
        flusher.flush_now()
    assert flusher.pending() == 0
    assert [r.getMessage() for r in caplog.records] == ["flush failed too often, batch dropped"]
    assert caplog.records[0].__dict__["items"] == 1


def test_attempts_are_counted_per_batch_and_reset_by_a_success() -> None:
    # Given a sink that fails twice, with a flusher allowing 3 attempts
    sink = CountingSink(failures=2)
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test", max_attempts=3)
    flusher.submit(1)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            flusher.flush_now()
    # When the third attempt succeeds, then the next batch gets its own 3 attempts
    assert flusher.flush_now() == 1
    sink.failing = 2
    flusher.submit(2)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            flusher.flush_now()
    assert flusher.pending() == 1, "two failures of a new batch do not drop it"
    assert flusher.flush_now() == 1
    assert sink.flushed() == [1, 2]


def _flusher_threads(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_close_flushes_everything_and_stops_the_thread_and_a_later_item_starts_it_again() -> None:
    sink = Sink()
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test-close")
    for item in range(5):
        flusher.submit(item)
    assert _flusher_threads("test-close")
    assert flusher.close() == 0
    assert sink.flushed() == [0, 1, 2, 3, 4]
    wait_for(lambda: not _flusher_threads("test-close"), timeout=10, what="the thread stopped")
    flusher.submit(5)
    assert _flusher_threads("test-close")
    assert flusher.close() == 0
    assert sink.flushed() == [0, 1, 2, 3, 4, 5]


def test_close_does_not_wait_on_a_sink_that_keeps_failing_and_reports_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a sink that is down and a flusher that retries forever (the acks' policy)
    sink = CountingSink(failures=None)
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test", retry_delay=3600)
    for item in range(3):
        flusher.submit(item)
    # When it is closed, then it tries once, keeps the items and says how many were left
    with caplog.at_level("WARNING", logger="app.timed_flush"):
        assert flusher.close() == 3
    assert sink.calls == 1 and flusher.pending() == 3
    assert any(r.getMessage() == "items not flushed at close" for r in caplog.records)


def test_close_with_a_bounded_policy_drops_what_keeps_failing() -> None:
    sink = CountingSink(failures=None)
    dropped: list[int] = []
    flusher: TimedFlush[int] = TimedFlush(
        sink, interval=60, name="test", max_attempts=2, on_drop=lambda items, _err: dropped.extend(items)
    )
    for item in range(3):
        flusher.submit(item)
    assert flusher.close() == 0
    assert sink.calls == 2 and dropped == [0, 1, 2]


def test_close_returns_after_its_timeout_when_a_flush_hangs() -> None:
    # Given a sink stuck in its first flush
    entered, release = threading.Event(), threading.Event()

    def hanging(items: Sequence[int]) -> None:
        entered.set()
        release.wait(30)

    flusher: TimedFlush[int] = TimedFlush(hanging, interval=0.001, name="test")
    flusher.submit(1)
    assert entered.wait(10)
    flusher.submit(2)
    # When it is closed with a short timeout, then it returns with the item it could not send
    try:
        assert flusher.close(timeout=0.05) == 1
    finally:
        release.set()


def test_a_forked_child_starts_empty_and_flushes_its_own_items() -> None:
    # Given a parent with an item queued and its flusher thread waiting
    read_end, write_end = os.pipe()
    sink = Sink()
    flusher: TimedFlush[int] = TimedFlush(sink, interval=60, name="test-fork")
    flusher.submit(1)
    # When the process forks and the child queues and flushes an item of its own
    pid = os.fork()
    if pid == 0:  # the child: report what it saw through the pipe, never return into pytest
        try:
            pending_at_start = flusher.pending()
            flusher.submit(2)
            thread_started = flusher._thread is not None and flusher._thread.is_alive()
            flusher.flush_now()
            report = {"pending_at_start": pending_at_start, "thread": thread_started, "flushed": sink.batches}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = json.loads(pipe.read())
    os.waitpid(pid, 0)
    # Then the child did not inherit the parent's item, ran its own thread and flushed only its own item
    assert report == {"pending_at_start": 0, "thread": True, "flushed": [[2]]}
    # And the parent still owns its item
    assert flusher.pending() == 1 and flusher.close() == 0
    assert sink.batches == [[1]]
