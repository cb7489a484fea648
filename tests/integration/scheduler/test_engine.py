"""The leader's loop on a controllable clock: DST days, split brain, catch-up after a takeover, pause and resume.

Real Redis (lock, queues) and PostgreSQL (``schedule_runs``); only the wall clock is the test's.
"""

from __future__ import annotations

import collections
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from app.scheduler import state
from app.scheduler.config import ResolvedSchedule
from app.scheduler.engine import Engine
from tests.integration.scheduler.conftest import EngineFactory, run_until, table
from tests.support.scheduler import queued_once, runs

pytestmark = pytest.mark.integration

NEW_YORK = ZoneInfo("America/New_York")


#: SCHEDULES_FILE trigger lines of the cleanup schedule in the single-schedule tests.
EVERY_MINUTE = 'trigger = "cron"\nminute = "*"'
EVERY_SECOND = 'trigger = "interval"\nseconds = 1'


def _cleanup_only(tmp_path: Path, trigger: str, *, grace_s: int) -> list[ResolvedSchedule]:
    """The table reduced to cleanup, firing on ``trigger`` with a misfire grace of ``grace_s`` seconds."""
    toml = f"[cleanup]\n{trigger}\nmisfire_grace_time = {grace_s}\n"
    return [s for s in table("UTC", toml, tmp_path) if s.name == "cleanup"]


def _fires_per_schedule(start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    rows = [r for r in runs() if start <= r.fire_time < end]
    assert all(r.status == "enqueued" for r in rows), [(r.name, r.status, r.reason) for r in rows]
    return dict(collections.Counter(r.name for r in rows))


def _assert_each_enqueued_once(client: redis.Redis) -> None:
    keys = queued_once(client)
    enqueued = [r for r in runs() if r.status in ("enqueued", "manual")]
    assert len(keys) == len(enqueued)


@pytest.mark.parametrize(
    ("day", "hours"),
    [(dt.date(2026, 3, 8), 23), (dt.date(2026, 11, 1), 25)],
    ids=["spring-forward", "fall-back"],
)
def test_a_dst_day_fires_each_local_schedule_once(
    make_engine: EngineFactory, redis_client: redis.Redis, day: dt.date, hours: int
) -> None:
    # Given the table in New York, a day on which the clocks change
    start = dt.datetime.combine(day, dt.time(), NEW_YORK)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), NEW_YORK)
    engine = make_engine(table("America/New_York"), start - dt.timedelta(seconds=1))

    # When the leader runs through it
    run_until(engine, end - dt.timedelta(seconds=1))

    # Then each daily schedule fired once, at its local time; hourly ones once per real hour
    fired = _fires_per_schedule(start, end)
    assert fired == {
        "daily-reminders": hours,
        "analytics-refresh": hours,
        "sam-sync": 4,
        "entity-sync": 1,
        "cleanup": 1,
    }
    cleanup = next(r for r in runs("cleanup") if start <= r.fire_time < end)
    # 02:00 does not exist on the spring-forward day: APScheduler fires at the first instant after the gap
    assert cleanup.fire_time.astimezone(NEW_YORK).hour == (3 if hours == 23 else 2)
    _assert_each_enqueued_once(redis_client)


def test_a_daily_time_in_the_repeated_hour_fires_once(
    make_engine: EngineFactory, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given cleanup moved to 01:30 New York time, which happens twice on the fall-back day
    schedules = table("America/New_York", "[cleanup]\nhour = 1\nminute = 30\n", tmp_path)
    schedules = [s for s in schedules if s.name == "cleanup"]
    start = dt.datetime(2026, 11, 1, tzinfo=NEW_YORK)
    engine = make_engine(schedules, start - dt.timedelta(seconds=1))

    # When the day passes
    run_until(engine, dt.datetime(2026, 11, 2, tzinfo=NEW_YORK) - dt.timedelta(seconds=1))

    # Then it fired once, at the first 01:30 (EDT)
    rows = runs("cleanup")
    assert [r.fire_time for r in rows] == [dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)]
    _assert_each_enqueued_once(redis_client)


class SplitBrainLock:
    """A lock that always says "you lead": what each side believes after a partition or a paused process."""

    def __init__(self) -> None:
        self.released = False

    def refresh(self) -> bool:
        return True

    def leading(self) -> bool:
        return True

    def seconds_to_next_attempt(self) -> float:
        return 1.0

    def release(self) -> None:
        self.released = True


def test_two_leaders_at_once_send_each_fire_once(
    make_engine: EngineFactory, redis_client: redis.Redis
) -> None:
    # Given two replicas that both believe they lead, their clocks 300 ms apart
    start = dt.datetime(2026, 12, 7, 0, 0, 0, tzinfo=dt.UTC)
    schedules = table("UTC")
    first = make_engine(schedules, start, replica="a:1")
    second = make_engine(schedules, start + dt.timedelta(milliseconds=300), replica="b:2")
    for engine in (first, second):
        engine.lock = SplitBrainLock()  # type: ignore[assignment]

    # When both run through a day, interleaved fire by fire, each going first in turn
    end = start + dt.timedelta(days=1)
    skew = {first: dt.timedelta(milliseconds=100), second: dt.timedelta(milliseconds=400)}
    for engine in (first, second):
        engine.step()
    turn = 0
    while first.clock.now() < end:
        turn += 1
        for engine in (first, second) if turn % 2 else (second, first):
            upcoming = [s.next_after(engine.cursors[s.name]) for s in engine.schedules]
            due = min(t for t in upcoming if t is not None)
            engine.clock.set(min(due + skew[engine], end))  # type: ignore[attr-defined]
            engine.step()

    # Then every fire of the day was sent once, by one or the other
    fired = _fires_per_schedule(start, end)
    assert fired["daily-reminders"] == 24 and fired["cleanup"] == 1 and fired["weekly-reports"] == 1
    assert {r.replica for r in runs()} == {"a:1", "b:2"}
    _assert_each_enqueued_once(redis_client)


def test_a_takeover_runs_the_fire_inside_grace_once_and_records_older_ones_missed(
    make_engine: EngineFactory, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given cleanup every minute with a 150 s grace; a leader fired 10:00 and died
    schedules = _cleanup_only(tmp_path, EVERY_MINUTE, grace_s=150)
    start = dt.datetime(2026, 12, 7, 10, 0, 0, 500_000, tzinfo=dt.UTC)
    old = make_engine(schedules, start, replica="old:1")
    old.step()
    old.lock.release()
    assert [r.status for r in runs("cleanup")] == ["enqueued"]

    # When a standby takes over at 10:05:30
    new = make_engine(schedules, dt.datetime(2026, 12, 7, 10, 5, 30, tzinfo=dt.UTC), replica="new:2")
    new.step()

    # Then 10:01 and 10:02 are missed (late), 10:03 and 10:04 coalesced into 10:05, which ran once
    by_minute = {r.fire_time.minute: (r.status, r.reason or "") for r in runs("cleanup")}
    assert by_minute[5][0] == "enqueued"
    assert [by_minute[m][0] for m in range(1, 5)] == ["missed"] * 4
    assert all("grace" in by_minute[m][1] for m in (1, 2))
    assert all("coalesced" in by_minute[m][1] for m in (3, 4))
    assert next(s for s in state.schedule_states() if s.name == "cleanup").missed_count == 4
    _assert_each_enqueued_once(redis_client)


def _step_to(engine: Engine, moment: dt.datetime) -> None:
    engine.clock.set(moment)  # type: ignore[attr-defined]
    engine.step()


def test_a_paused_schedule_does_not_fire_even_after_a_takeover_and_resumes_at_its_next_fire(
    make_engine: EngineFactory, redis_client: redis.Redis, tmp_path: Path
) -> None:
    schedules = _cleanup_only(tmp_path, EVERY_MINUTE, grace_s=600)
    t0 = dt.datetime(2026, 12, 7, 10, 0, 0, 100_000, tzinfo=dt.UTC)
    minute = dt.timedelta(minutes=1)
    leader = make_engine(schedules, t0, replica="a:1")
    leader.step()  # 10:00 fires

    # When an operator pauses it (from another process: only the database is shared)
    state.pause("cleanup", by="test:operator")
    _step_to(leader, t0 + minute)  # 10:01 due while paused
    leader.lock.release()
    standby = make_engine(schedules, t0 + 2 * minute, replica="b:2")
    standby.step()  # takes over at 10:02, still paused
    assert [r.fire_time.minute for r in runs("cleanup")] == [0]
    assert next(s for s in state.schedule_states() if s.name == "cleanup").paused

    # Then after resume it fires from its next fire on; the paused ones are not caught up
    state.resume("cleanup", by="test:operator")
    _step_to(standby, t0 + 3 * minute)
    assert [(r.fire_time.minute, r.status) for r in runs("cleanup")] == [(0, "enqueued"), (3, "enqueued")]
    assert not next(s for s in state.schedule_states() if s.name == "cleanup").paused
    _assert_each_enqueued_once(redis_client)


def test_the_leader_imports_dramatiqs_dead_letter_queues_into_the_archive(
    scheduler_env: dict[str, str], redis_client: redis.Redis
) -> None:
    from sqlalchemy import select

    from app.db.models import DeadLetter
    from app.db.session import session_scope
    from app.scheduler.clock import ManualClock
    from app.scheduler.leader import LeaderLock
    from tests.support.helpers import wait_for

    # Given a message Dramatiq dead-lettered while the database was away (left in the email queue's XQ)
    redis_client.zadd("dramatiq:email.XQ", {"poison": 1})
    redis_client.hset("dramatiq:email.XQ.msgs", "poison", b"\xff not json")
    engine = Engine(
        [],
        lock=LeaderLock("test:1", ttl_s=30, renew_s=10),
        clock=ManualClock(dt.datetime(2026, 12, 7, tzinfo=dt.UTC)),
        replica="test:1",
        dlq_sync_interval_s=300,
    )
    try:
        # When the leader takes its first step
        engine.step()

        # Then the archive has it and the XQ is empty
        def archived() -> list[str]:
            with session_scope() as session:
                return list(session.scalars(select(DeadLetter.message_id)))

        assert wait_for(archived, timeout=20, what="the dead letter in the archive") == ["undecodable:poison"]
        assert redis_client.zcard("dramatiq:email.XQ") == 0
    finally:
        engine.lock.release()


def test_a_cursor_months_old_is_caught_up_without_walking_every_fire(
    make_engine: EngineFactory, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given an every-second schedule whose last fire was 90 days ago (about 7.8 million fires since)
    schedules = _cleanup_only(tmp_path, EVERY_SECOND, grace_s=3)
    now = dt.datetime(2026, 12, 7, 12, 0, 0, 500_000, tzinfo=dt.UTC)
    old = make_engine(schedules, now - dt.timedelta(days=90), replica="old:1")
    old.step()
    old.lock.release()

    # When a leader comes up now
    make_engine(schedules, now, replica="new:2").step()

    # Then the oldest 100 late fires are recorded, the grace window coalesced, and the latest fire sent
    rows = runs("cleanup")
    late = [r for r in rows if r.status == "missed" and "grace" in (r.reason or "")]
    assert len(late) == 100
    assert rows[-1].status == "enqueued" and rows[-1].fire_time == now.replace(microsecond=0)
    _assert_each_enqueued_once(redis_client)
