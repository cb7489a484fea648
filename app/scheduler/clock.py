"""The scheduler's sense of time, replaceable so that tests can run a DST day in a second without waiting.

Only wall-clock questions go through it (what time is it, wait until the next fire); the leader lock's lease
is measured on the monotonic clock of the process and is not affected.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Now, aware, in UTC."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Let ``seconds`` pass (or less, if ``stop`` is set); True when ``stop`` is set."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told: :meth:`wait` advances it at once by the time asked for."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, moment: dt.datetime) -> None:
        self._now = moment.astimezone(dt.UTC)

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        self.advance(max(0.0, seconds))
        return stop.is_set()
