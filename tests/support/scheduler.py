"""Real ``jobs scheduler`` processes for tests, tied to the test process, and what they left behind.

A test writes a ``SCHEDULES_FILE`` (usually every-second interval triggers), starts replicas with
:func:`scheduler_replicas`, and reads the result: ``schedule_runs`` rows (:func:`runs`) and the messages on the
queues (:func:`queued_keys`).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from schedules import SCHEDULES
from tests.support.helpers import wait_for
from tests.support.process import LoggedProcess


def every_second(*names: str, grace_s: float = 5) -> str:
    """A ``SCHEDULES_FILE`` where ``names`` fire every second (interval) and every other schedule is off."""
    sections = []
    for name in (schedule.name for schedule in SCHEDULES):
        if name in names:
            sections.append(f'[{name}]\ntrigger = "interval"\nseconds = 1\nmisfire_grace_time = {grace_s}\n')
        else:
            sections.append(f"[{name}]\nenabled = false\n")
    return "\n".join(sections)


#: Lock settings under which a leader that dies is replaced within seconds (TTL 2 s, renewed every 0.5 s).
FAST_LOCK = {"SCHEDULER_LOCK_TTL_S": "2", "SCHEDULER_LOCK_RENEW_S": "0.5"}


def schedules_env(env: dict[str, str], directory: Path, schedules: str) -> dict[str, str]:
    """``env`` with ``schedules`` (a ``SCHEDULES_FILE``'s text) written to ``directory`` and named by it."""
    path = directory / "schedules.toml"
    path.write_text(schedules)
    return {**env, "SCHEDULES_FILE": str(path)}


class SchedulerProcess(LoggedProcess):
    """One ``jobs scheduler`` replica (``python -m app.cli scheduler``); its output goes to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path, *, http_port: int = 0) -> None:
        self.http_port = http_port
        super().__init__(
            [sys.executable, "-m", "app.cli", "scheduler", "--http-port", str(http_port)],
            {**env, "PYTHONUNBUFFERED": "1"},
            log_path,
        )

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)


@contextlib.contextmanager
def scheduler_replicas(env: dict[str, str], log_dir: Path) -> Iterator[Callable[..., SchedulerProcess]]:
    """A starter of scheduler replicas (``start(http_port=...)``); every one started is stopped at the end."""
    numbers = itertools.count()
    started: list[SchedulerProcess] = []

    def start(http_port: int = 0) -> SchedulerProcess:
        process = SchedulerProcess(env, log_dir / f"scheduler-{next(numbers)}.log", http_port=http_port)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


def leader_pid(client: redis.Redis) -> int | None:
    """The pid in the leader lock's token (``host:pid``), or None when nobody leads."""
    token = client.get("jobs:scheduler:leader")
    return int(token.decode().rsplit(":", 1)[1]) if token else None


def wait_leader(
    client: redis.Redis, among: list[SchedulerProcess], timeout: float = 30.0
) -> SchedulerProcess:
    """The replica among ``among`` that holds the lock, once one does."""

    def found() -> SchedulerProcess | None:
        for process in among:
            if not process.alive():
                raise AssertionError(f"scheduler exited with {process.proc.returncode}:\n{process.output()}")
        pid = leader_pid(client)
        return next((p for p in among if p.pid == pid), None)

    leader = wait_for(found, timeout=timeout, what="a scheduler leader")
    assert isinstance(leader, SchedulerProcess)
    return leader


def leader_and_standby(
    client: redis.Redis, start: Callable[..., SchedulerProcess]
) -> tuple[SchedulerProcess, SchedulerProcess]:
    """Two replicas started with ``start``, once one of them holds the lock: the leader, then the other."""
    replicas = [start(), start()]
    leader = wait_leader(client, replicas)
    return leader, next(r for r in replicas if r is not leader)


def runs(name: str | None = None) -> list[Any]:
    """``schedule_runs`` rows (of ``name``), oldest fire first, read with this process's DATABASE_URL."""
    from sqlalchemy import select

    from app.db.models import ScheduleRun
    from app.db.session import session_scope

    query = select(ScheduleRun).order_by(ScheduleRun.fire_time)
    if name is not None:
        query = query.where(ScheduleRun.name == name)
    with session_scope() as session:
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def enqueued_runs(name: str) -> list[Any]:
    return [r for r in runs(name) if r.status == "enqueued"]


def queued_keys(client: redis.Redis, queues: tuple[str, ...] = ("email", "sync")) -> collections.Counter[str]:
    """How many messages on ``queues`` (ready or delayed) carry each ``schedule:`` idempotency key."""
    import json

    keys: collections.Counter[str] = collections.Counter()
    for queue in queues:
        for hash_name in (f"dramatiq:{queue}.msgs", f"dramatiq:{queue}.DQ.msgs"):
            for body in client.hvals(hash_name):
                key = json.loads(body).get("options", {}).get("idempotency_key", "")
                if key.startswith("schedule:"):
                    keys[key] += 1
    return keys


def queued_once(client: redis.Redis) -> collections.Counter[str]:
    """The ``schedule:`` keys on the queues (:func:`queued_keys`), after checking that none is there twice."""
    keys = queued_keys(client)
    assert keys and max(keys.values()) == 1, keys.most_common(3)
    return keys


def one_row_per_second(name: str) -> list[Any]:
    """``name``'s ``schedule_runs`` rows, after checking that each second from its first fire to its last has
    exactly one."""
    rows = runs(name)
    times = [r.fire_time for r in rows]
    expected = int((times[-1] - times[0]).total_seconds()) + 1
    assert len(times) == len(set(times)) == expected, f"{name}: {len(times)} rows for {expected} seconds"
    return rows
