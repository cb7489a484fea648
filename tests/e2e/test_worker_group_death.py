"""A worker group dies with any of its processes: a SIGKILL leaves nothing of the group consuming.

``jobs worker`` (the launcher) starts Dramatiq's main process, which forks the worker processes. Each process of
a real group is SIGKILLed in turn, in a fresh group each time, and every process of the group is then followed in
/proc until none is left (docs/architecture.md "Process supervision").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from app.parent_death import LAUNCHER_PID_ENV
from tests.support.helpers import ROOT, free_port, wait_for
from tests.support.worker import WorkerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux-only"),
]

QUEUE = "email"
PROCESSES = 2


@dataclass(frozen=True)
class Proc:
    """A process identified by pid and start time, so that a recycled pid is not taken for it."""

    pid: int
    start: str


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def alive(proc: Proc) -> bool:
    """Running, not a zombie (an exited process that its parent has not reaped runs nothing)."""
    fields = stat_fields(proc.pid)
    return fields is not None and fields[19] == proc.start and fields[0] not in ("Z", "X")


def children(parent: int) -> list[Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None and int(fields[1]) == parent and fields[0] not in ("Z", "X"):
                found.append(Proc(int(entry), fields[19]))
    return sorted(found, key=lambda proc: proc.pid)


def as_proc(pid: int) -> Proc:
    fields = stat_fields(pid)
    assert fields is not None, f"process {pid} is gone"
    return Proc(pid, fields[19])


def heartbeat_keys(client: redis.Redis) -> set[str]:
    """The platform's heartbeat keys of the queue (``jobs:heartbeat:<queue>:<host>:<pid>``), deleted on a graceful stop."""
    return {key.decode() for key in client.keys(f"jobs:heartbeat:{QUEUE}:*")}


@dataclass
class Group:
    worker: WorkerProcess
    launcher: Proc
    main: Proc
    workers: list[Proc]

    def roles(self) -> dict[str, Proc]:
        return {
            "launcher": self.launcher,
            "main": self.main,
            **{f"worker{i}": proc for i, proc in enumerate(self.workers)},
        }

    def survivors(self) -> list[str]:
        self.worker.proc.poll()  # reap the launcher once it has exited (this test is its parent)
        return [role for role, proc in self.roles().items() if alive(proc)]

    def wait_until_gone(self) -> None:
        try:
            wait_for(lambda: self.survivors() == [], timeout=60, interval=0.1, what="every process gone")
        except AssertionError as err:
            raise AssertionError(f"{err}: {self.survivors()} left\n{self.worker.output()[-3000:]}") from None


@pytest.fixture
def group(platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path) -> Iterator[Group]:
    """A fresh ``jobs worker email`` group with two worker processes, every process of it found in /proc."""
    command = [
        sys.executable, "-m", "app.cli", "worker", QUEUE, "--http-port", str(free_port()),
        "--processes", str(PROCESSES), "--threads", "1", "--shutdown-timeout", "2",
    ]  # fmt: skip
    worker = WorkerProcess(platform_env, [], [QUEUE], log_path=tmp_path / "group.log", command=command)
    known: list[Proc] = []
    try:
        wait_for(
            lambda: len(heartbeat_keys(redis_client)) == PROCESSES,
            timeout=60,
            what=f"{PROCESSES} worker processes with a heartbeat",
        )
        launcher = as_proc(worker.proc.pid)
        mains = children(launcher.pid)
        assert len(mains) == 1, mains
        workers = children(mains[0].pid)
        assert len(workers) == PROCESSES, workers
        assert all(children(proc.pid) == [] for proc in workers)
        known += [*mains, *workers]
        yield Group(worker, launcher, mains[0], workers)
    finally:
        if worker.proc.poll() is None:
            known += [proc for child in children(worker.proc.pid) for proc in [child, *children(child.pid)]]
        worker.stop(timeout=30)
        # Whatever the test did, leave no process of the group behind for the next test
        for proc in known:
            if alive(proc):
                os.kill(proc.pid, signal.SIGKILL)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("role", ["launcher", "main", "worker0", "worker1"])
def test_sigkill_of_any_process_of_a_group_leaves_no_survivor(
    group: Group, role: str, redis_client: redis.Redis
) -> None:
    # Given a running group, every process of it known
    roles = group.roles()
    assert group.survivors() == list(roles)
    heartbeats = heartbeat_keys(redis_client)
    killed = roles[role]

    # When one of its processes is SIGKILLed
    os.kill(killed.pid, signal.SIGKILL)

    # Then no process of the group is left running
    group.wait_until_gone()
    # And the worker processes that were not killed stopped gracefully (SIGTERM, not SIGKILL): each deleted its
    # heartbeat key on the way out, which a killed process cannot do
    stopped_gracefully = {key for key in heartbeats if not key.endswith(f":{killed.pid}")}
    assert len(stopped_gracefully) == PROCESSES - (1 if role.startswith("worker") else 0)
    left = heartbeat_keys(redis_client) & stopped_gracefully
    assert not left, f"{left} not deleted\n{group.worker.output()[-3000:]}"


@pytest.mark.timeout(120)
def test_launcher_exits_only_after_the_workers_of_a_killed_main_process(group: Group) -> None:
    # Given a running group
    # When Dramatiq's main process is SIGKILLed, its worker processes orphaned
    os.kill(group.main.pid, signal.SIGKILL)

    # Then the launcher waits for them (it adopted them) before it exits: once it has exited, none is running
    group.worker.proc.wait(timeout=60)
    assert [proc for proc in group.workers if alive(proc)] == []
    assert group.worker.proc.returncode != 0


def test_main_process_exits_at_once_when_its_launcher_is_already_gone(platform_env: dict[str, str]) -> None:
    # Given Dramatiq's main process told that its launcher is a process that is not its parent (the launcher
    # died and the process was reparented before it could arm the parent-death signal)
    result = subprocess.run(
        [sys.executable, "-m", "app.worker_main", "app.worker_boot", "actors.email", "--queues", QUEUE],
        env={**os.environ, **platform_env, LAUNCHER_PID_ENV: "1", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it exits with Dramatiq's "killed" code before starting any worker process
    assert result.returncode == 1, result.stderr
    assert "launcher gone" in result.stderr
    assert "Worker process is ready" not in result.stderr + result.stdout
