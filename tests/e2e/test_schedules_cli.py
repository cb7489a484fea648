"""``jobs schedules`` as an operator runs it, beside real ``jobs scheduler`` processes (real Redis, PostgreSQL).

The schedulers run on a test ``SCHEDULES_FILE``: in the pause test two schedules whose actors exist today
(``daily-reminders`` and ``weekly-reports``, both on the email queue) fire every second; elsewhere every schedule
fires once a year, so that nothing but the operator's run-now enqueues anything while the test looks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from app.db.models import AuditEvent, ScheduleRun
from app.db.session import session_scope
from tests.support.helpers import ROOT, wait_for

pytestmark = pytest.mark.e2e

SCHEDULES = ("daily-reminders", "sam-sync", "entity-sync", "analytics-refresh", "cleanup", "weekly-reports")
#: Fires every second in the pause test; its actor (dispatch_daily_reminders) exists.
PAUSED = "daily-reminders"
#: Fires every second beside it, to show the leader ticking while PAUSED stays silent.
CONTROL = "weekly-reports"
#: Every schedule disabled: nothing fires during a test unless an operator asks (run-now fires disabled ones too).
QUIET_FILE = "".join(f"[{name}]\nenabled = false\n\n" for name in SCHEDULES)
#: PAUSED and CONTROL every second, the others disabled.
EVERY_SECOND_FILE = "".join(
    f'[{name}]\ntrigger = "interval"\nseconds = 1\n\n'
    if name in (PAUSED, CONTROL)
    else f"[{name}]\nenabled = false\n\n"
    for name in SCHEDULES
)
#: Starts ``jobs`` tied to this test process: if the test run is killed, the kernel stops the scheduler.
TIED = (
    "import sys; from app.parent_death import die_with_parent\n"
    "if not die_with_parent(int(sys.argv[1])): sys.exit(1)\n"
    "from app.cli import main; main(sys.argv[2:])"
)


def jobs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env, "JOBS_OPERATOR": "alice"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


class Scheduler:
    """One ``jobs scheduler`` replica, its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TIED, str(os.getpid()), "scheduler"],
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"scheduler exited with {self.proc.returncode}:\n{self.output()}")
        return True

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def schedulers(platform_env: dict[str, str], tmp_path: Path) -> Iterator[list[Scheduler]]:
    """The replicas a test starts (append to the list); all stopped at its end."""
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()


def scheduler_env(platform_env: dict[str, str], tmp_path: Path, schedules_file: str) -> dict[str, str]:
    path = tmp_path / "schedules.toml"
    path.write_text(schedules_file)
    return {**platform_env, "SCHEDULES_FILE": str(path)}


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


def test_an_unknown_schedule_is_one_line_and_exit_1(platform_env: dict[str, str]) -> None:
    for args in (("run", "no-such"), ("pause", "no-such"), ("resume", "no-such")):
        result = jobs(platform_env, "schedules", *args)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert "no-such" in result.stderr


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


def test_run_now_beside_a_leader_and_a_standby_enqueues_exactly_one(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path, schedulers: list[Scheduler]
) -> None:
    # Given a leader and a standby on a table that fires nothing during the test
    env = scheduler_env(platform_env, tmp_path, QUIET_FILE)
    schedulers.extend(Scheduler(env, tmp_path / f"scheduler-{n}.log") for n in (1, 2))
    wait_for(
        lambda: all(s.alive() for s in schedulers) and "leader" in (schedulers[0].output() + schedulers[1].output()),
        timeout=30, what="a scheduler to lead",
    )  # fmt: skip

    # When the operator fires one schedule now, twice
    fired = [run_now(env, "daily-reminders"), run_now(env, "daily-reminders")]

    # Then exactly one message per call, each with its own key; the replicas add nothing
    messages = email_messages(redis_client)
    assert sorted(m["message_id"] for m in messages) == sorted(f["message_id"] for f in fired)
    assert len({f["key"] for f in fired}) == 2
    with session_scope() as session:
        runs = list(session.scalars(select(ScheduleRun).where(ScheduleRun.name == "daily-reminders")))
    assert sorted(r.message_id or "" for r in runs) == sorted(f["message_id"] for f in fired)


def test_pause_and_resume_hold_across_a_restart(
    platform_env: dict[str, str], tmp_path: Path, schedulers: list[Scheduler]
) -> None:
    env = scheduler_env(platform_env, tmp_path, EVERY_SECOND_FILE)
    schedulers.append(Scheduler(env, tmp_path / "scheduler-1.log"))
    wait_for(lambda: schedulers[0].alive() and fires(PAUSED) >= 1, timeout=30, what=f"{PAUSED} firing")

    # When PAUSED is paused, its fire already under way (if any) lands, then nothing more
    paused_at = now()
    assert jobs(env, "schedules", "pause", PAUSED).returncode == 0
    wait_for(lambda: fires(CONTROL, since=paused_at) >= 2, timeout=30, what=f"{CONTROL} firing twice")
    settled = fires(PAUSED)
    mark = now()
    wait_for(lambda: fires(CONTROL, since=mark) >= 3, timeout=30, what=f"{CONTROL} firing 3 more times")
    assert fires(PAUSED) == settled

    # And after a restart it is still paused (the state is in the database, not in the process)
    schedulers[0].stop()
    schedulers.append(Scheduler(env, tmp_path / "scheduler-2.log"))
    restarted = now()
    wait_for(
        lambda: schedulers[1].alive() and fires(CONTROL, since=restarted) >= 3, timeout=30, what="restart"
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
