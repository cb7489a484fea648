"""The log writer: records from any thread written in batches, and a broken stream never retried forever."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from app.observability import _JsonFormatter, _LogWriter
from tests.support.helpers import wait_for


class BrokenStream(io.StringIO):
    """A stdout whose reader went away: every write fails, as on a closed pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError("reader gone")


def _record(message: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "test", "levelname": "INFO", "levelno": logging.INFO, "msg": message}
    )


def test_records_are_written_as_json_lines_by_the_writer_thread() -> None:
    stream = io.StringIO()
    writer = _LogWriter(stream, _JsonFormatter())
    for n in range(3):
        writer.handler.handle(_record(f"line {n}"))
    wait_for(lambda: stream.getvalue().count("\n") == 3, timeout=10, what="three lines written")
    lines = stream.getvalue().splitlines()
    assert ['"event":"line 0"' in lines[0], '"event":"line 2"' in lines[2]] == [True, True]
    writer.close()


def test_a_broken_stream_drops_its_batch_once_and_later_lines_are_written_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a writer whose stream and the process's original stderr both fail
    monkeypatch.setattr(sys, "__stderr__", None)
    stream = BrokenStream()
    writer = _LogWriter(stream, _JsonFormatter())
    for n in range(5):
        writer.handler.handle(_record(f"lost {n}"))
    # When the thread writes them, then the batch is dropped and counted after one try, not retried
    wait_for(lambda: writer.dropped == 5, timeout=10, what="the five lines dropped")
    assert writer.batcher.pending() == 0
    writes = stream.writes
    writer.flush()  # nothing left: no write, no error
    assert stream.writes == writes
    # And a line logged once the stream works again is written, without the dropped ones
    stream.write = io.StringIO.write.__get__(stream)  # type: ignore[method-assign]
    writer.handler.handle(_record("back"))
    writer.flush()
    assert '"event":"back"' in stream.getvalue() and "lost" not in stream.getvalue()
    writer.close()


def test_flush_writes_what_is_queued_and_never_raises_on_a_broken_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "__stderr__", None)
    writer = _LogWriter(BrokenStream(), _JsonFormatter())
    writer.batcher.close()  # no thread: flush() alone handles the records
    writer.batcher._queued.append(_record("one"))
    writer.flush()
    assert writer.dropped == 1 and writer.batcher.pending() == 0
