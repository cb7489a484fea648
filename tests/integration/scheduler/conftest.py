"""Fixtures of the scheduler's in-process tests: the platform on this test's Redis database and schema, and
engines driven by a :class:`~app.scheduler.clock.ManualClock` (a DST day passes without waiting)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.scheduler.clock import ManualClock
from app.scheduler.config import ResolvedSchedule, load_schedules
from app.scheduler.engine import Engine
from app.scheduler.leader import LeaderLock
from app.settings import reset_settings

EngineFactory = Callable[..., Engine]


@pytest.fixture
def scheduler_env(platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The platform environment with the scheduler's settings at their defaults (no SCHEDULES_FILE)."""
    monkeypatch.delenv("SCHEDULES_FILE", raising=False)
    monkeypatch.setenv("SCHEDULER_TIMEZONE", "UTC")
    reset_settings()
    return platform_env


@pytest.fixture
def make_engine(scheduler_env: dict[str, str]) -> Iterator[EngineFactory]:
    """Build engines on a ManualClock; every engine built is released at the end of the test."""
    built: list[Engine] = []

    def make(
        schedules: list[ResolvedSchedule], start: dt.datetime, *, replica: str = "test:1", ttl_s: float = 30.0
    ) -> Engine:
        engine = Engine(
            schedules,
            lock=LeaderLock(replica, ttl_s=ttl_s, renew_s=ttl_s / 3),
            clock=ManualClock(start),
            replica=replica,
        )
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.lock.release()


def table(zone: str = "UTC", toml: str | None = None, tmp_path: Path | None = None) -> list[ResolvedSchedule]:
    """The schedule table in ``zone``, with ``toml`` as SCHEDULES_FILE when given."""
    path = None
    if toml is not None:
        assert tmp_path is not None
        path = tmp_path / "schedules.toml"
        path.write_text(toml)
    return load_schedules(zone, path)


def run_until(engine: Engine, end: dt.datetime) -> None:
    """Step ``engine`` fire by fire until its clock reaches ``end``: the clock jumps to just after each next
    fire, as a real process would wake for it, so a day takes a few dozen steps."""
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    engine.step()
    while clock.now() < end:
        upcoming = [s.next_after(engine.cursors[s.name]) for s in engine.schedules]
        due = min((t for t in upcoming if t is not None), default=end)
        clock.set(min(due + dt.timedelta(milliseconds=200), end))
        engine.step()
