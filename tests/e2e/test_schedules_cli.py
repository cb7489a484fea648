"""``jobs schedules`` as an operator runs it, beside real ``jobs scheduler`` processes (real Redis, PostgreSQL).

The schedulers run on a test ``SCHEDULES_FILE``: in the pause test two schedules whose actors exist today
(``daily-reminders`` and ``weekly-reports``, both on the email queue) fire every second; elsewhere every schedule
is disabled, so that nothing but the operator's run-now enqueues anything while the test looks. The replicas
come from ``tests/support/scheduler.py`` (tied to the test process).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from app.db.models import AuditEvent, ScheduleRun
from app.db.session import session_scope
from tests.support.helpers import free_port, jobs, wait_for
from tests.support.scheduler import (
    SchedulerProcess,
    every_second,
    leader_and_standby,
    scheduler_replicas,
    schedules_env,
)

pytestmark = pytest.mark.e2e

SCHEDULES = ("daily-reminders", "sam-sync", "entity-sync", "analytics-refresh", "cleanup", "weekly-reports")
#: Fires every second in the pause test; its actor (dispatch_daily_reminders) exists.
PAUSED = "daily-reminders"
#: Fires every second beside it, to show the leader ticking while PAUSED stays silent.
CONTROL = "weekly-reports"
#: Every schedule disabled: nothing fires during a test unless an operator asks (run-now fires disabled ones too).
QUIET_FILE = every_second()


def fires(name: str, *, since: dt.datetime | None = None) -> int:
    """Fires of ``name`` recorded in ``schedule_runs`` (claimed after ``since``), run-nows excluded."""
    with session_scope() as session:
        query = select(func.count()).select_from(ScheduleRun).where(ScheduleRun.name == name)
        query = query.where(ScheduleRun.manual.is_(False))
        if since is not None:
            query = query.where(ScheduleRun.created_at > since)
        return int(session.scalar(query) or 0)


def email_messages(client: redis.Redis) -> list[dict[str, Any]]:
    bodies = client.hvals("dramatiq:email.msgs") + client.hvals("dramatiq:email.DQ.msgs")
    return [json.loads(body) for body in bodies]


def run_now(env: dict[str, str], name: str) -> dict[str, Any]:
    result = jobs(env, "schedules", "run", name)
    assert result.returncode == 0, result.stderr
    fired: dict[str, Any] = json.loads(result.stdout)
    return fired


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_list_shows_every_schedule_with_its_next_fire(platform_env: dict[str, str]) -> None:
    result = jobs(platform_env, "schedules", "list")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATE", "NEXT"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(SCHEDULES)
    for fields in rows.values():
        assert fields[1] == "active", fields
        dt.datetime.strptime(f"{fields[2]} {fields[3]}", "%Y-%m-%d %H:%M:%S")  # a next fire time
    assert rows["daily-reminders"][-1] == "dispatch_daily_reminders"

    as_json = [
        json.loads(line) for line in jobs(platform_env, "schedules", "list", "--json").stdout.splitlines()
    ]
    assert [item["name"] for item in as_json] == [line.split()[0] for line in lines[1:]]
    assert all(item["next_fire"] for item in as_json)


def test_run_now_without_any_scheduler_enqueues_one_message_per_call(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    first = run_now(platform_env, "daily-reminders")
    second = run_now(platform_env, "daily-reminders")

    messages = email_messages(redis_client)
    assert sorted(m["message_id"] for m in messages) == sorted([first["message_id"], second["message_id"]])
    assert first["key"] != second["key"]
    assert {m["options"]["idempotency_key"] for m in messages} == {first["key"], second["key"]}
    with session_scope() as session:
        audit = [(e.who, e.action) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert audit == [("cli:alice", "schedule.run")] * 2

    # An unknown name is one line on stderr and exit 1, and enqueues nothing
    unknown = jobs(platform_env, "schedules", "run", "no-such")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "no-such" in unknown.stderr
    assert len(email_messages(redis_client)) == 2

    # A run-now whose publish fails says so and exits 1 (its row stays `failed` for a leader to retry)
    down = jobs(
        {**platform_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, "schedules", "run", "cleanup"
    )
    assert down.returncode == 1, down.stdout + down.stderr
    assert json.loads(down.stdout)["status"] == "failed" and "nothing enqueued now" in down.stderr


def test_run_now_beside_a_leader_and_a_standby_enqueues_exactly_one(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a leader and a standby on a table that fires nothing by itself
    env = schedules_env(platform_env, tmp_path, QUIET_FILE)
    with scheduler_replicas(env, tmp_path) as start:
        replicas = leader_and_standby(redis_client, start)

        # When the operator fires one schedule now, twice
        fired = [run_now(env, "daily-reminders"), run_now(env, "daily-reminders")]

        # Then exactly one message per call, each with its own key; the replicas add nothing
        messages = email_messages(redis_client)
        assert sorted(m["message_id"] for m in messages) == sorted(f["message_id"] for f in fired)
        assert len({f["key"] for f in fired}) == 2
        with session_scope() as session:
            runs = list(session.scalars(select(ScheduleRun).where(ScheduleRun.name == "daily-reminders")))
        assert sorted(r.message_id or "" for r in runs) == sorted(f["message_id"] for f in fired)
        assert all(r.manual for r in runs)
        assert all(replica.alive() for replica in replicas)


def test_pause_and_resume_hold_across_a_restart(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a scheduler firing PAUSED and CONTROL every second
    env = schedules_env(platform_env, tmp_path, every_second(PAUSED, CONTROL))
    with scheduler_replicas(env, tmp_path) as start:
        first = start()
        wait_for(lambda: alive(first) and fires(PAUSED) >= 1, timeout=30, what=f"{PAUSED} firing")

        # When PAUSED is paused, a fire already under way (if any) lands, then nothing more
        paused_at = now()
        assert jobs(env, "schedules", "pause", PAUSED).returncode == 0
        wait_for(lambda: fires(CONTROL, since=paused_at) >= 2, timeout=30, what=f"{CONTROL} firing twice")
        settled = fires(PAUSED)
        mark = now()
        wait_for(lambda: fires(CONTROL, since=mark) >= 2, timeout=30, what=f"{CONTROL} firing twice more")
        assert fires(PAUSED) == settled

        # And after a restart it is still paused (the state is in the database, not in the process)
        first.stop()
        second = start()
        restarted = now()
        wait_for(
            lambda: alive(second) and fires(CONTROL, since=restarted) >= 2,
            timeout=30,
            what="the restart firing",
        )
        assert fires(PAUSED) == settled
        listed = jobs(env, "schedules", "list").stdout
        assert any(line.split()[:2] == [PAUSED, "paused"] for line in listed.splitlines()), listed

        # When it is resumed, it fires again
        assert jobs(env, "schedules", "resume", PAUSED).returncode == 0
        wait_for(lambda: fires(PAUSED) >= settled + 2, timeout=30, what=f"{PAUSED} firing again")
    with session_scope() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["schedule.pause", "schedule.resume"]


def alive(process: SchedulerProcess) -> bool:
    if not process.alive():
        raise AssertionError(f"scheduler exited with {process.proc.returncode}:\n{process.output()}")
    return True
