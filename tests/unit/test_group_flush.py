"""Leader/follower batching: every item flushed exactly once, in batches while a flush is slow, none left behind."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from app.group_flush import GroupFlush


class SlowSink:
    """A flush that takes a while, so that other threads arrive while it runs."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: Sequence[int]) -> None:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            self.release.wait(5)


def test_items_queued_during_a_flush_go_out_together_and_none_is_left() -> None:
    sink = SlowSink()
    group = GroupFlush(sink)
    leader = threading.Thread(target=group.submit, args=(0,))
    leader.start()
    assert sink.started.wait(5)
    followers = [threading.Thread(target=group.submit, args=(n,)) for n in range(1, 6)]
    for thread in followers:
        thread.start()
    for thread in followers:
        thread.join(5)  # followers return at once: the leader flushes for them
        assert not thread.is_alive()
    assert group.pending() == 5
    sink.release.set()
    leader.join(5)
    assert sink.batches == [[0], [1, 2, 3, 4, 5]]
    assert group.pending() == 0


def test_many_threads_flush_every_item_exactly_once() -> None:
    flushed: list[int] = []
    lock = threading.Lock()

    def sink(items: Sequence[int]) -> None:
        with lock:
            flushed.extend(items)

    group = GroupFlush(sink)
    threads = [
        threading.Thread(target=lambda t=t: [group.submit(t * 1000 + n) for n in range(500)])
        for t in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(flushed) == sorted(t * 1000 + n for t in range(8) for n in range(500))
    assert group.pending() == 0


def test_a_failed_flush_keeps_its_items_for_the_retry() -> None:
    calls: list[list[str]] = []

    def flaky(items: Sequence[str]) -> None:
        calls.append(list(items))
        if len(calls) == 1:
            raise ConnectionError("redis went away")

    group = GroupFlush(flaky)
    with pytest.raises(ConnectionError):
        group.submit("a")
    assert group.pending() == 1
    group.submit("b")
    assert calls == [["a"], ["a", "b"]]
    assert group.pending() == 0
