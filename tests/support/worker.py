"""Start a real worker process (``jobs worker`` or Dramatiq's own command line) for a test and stop it cleanly."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import redis

from tests.support.helpers import TEST_QUEUE, wait_for
from tests.support.process import LoggedProcess


class WorkerProcess(LoggedProcess):
    """A Dramatiq worker group on given modules and queues, tied to this process; its output goes to a log file."""

    stop_timeout = 40.0

    def __init__(
        self,
        env: dict[str, str],
        modules: list[str],
        queues: list[str],
        *,
        log_path: Path,
        processes: int = 1,
        threads: int = 2,
        shutdown_timeout_ms: int = 30_000,
        command: list[str] | None = None,
    ) -> None:
        self.queues = queues
        default = [
            sys.executable,
            "-m",
            "app.worker_main",
            "app.worker_boot",
            *modules,
            "--queues",
            *queues,
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--worker-shutdown-timeout",
            str(shutdown_timeout_ms),
            "--skip-logging",
        ]
        # only app.worker_main reads the launcher pid; a given command (`jobs worker ...`) ties its own group
        super().__init__(command or default, env, log_path, tied=command is None)

    def wait_ready(self, client: redis.Redis, timeout: float = 30.0) -> None:
        """Ready once every queue has a heartbeat key (written by WorkerLifecycle after boot)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            return all(client.keys(f"jobs:heartbeat:{q}:*") for q in self.queues)

        wait_for(ready, timeout=timeout, what="worker heartbeat")

    def log_records(self) -> list[dict[str, Any]]:
        """The worker's JSON log lines, parsed (other lines are skipped)."""
        records = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)


@contextlib.contextmanager
def running_worker(
    env: dict[str, str],
    client: redis.Redis,
    log_path: Path,
    *,
    modules: Sequence[str] = ("tests.support.actors",),
    queues: Sequence[str] = (TEST_QUEUE,),
    threads: int = 4,
    shutdown_timeout_ms: int = 5_000,
    command: list[str] | None = None,
) -> Iterator[WorkerProcess]:
    """A worker on the test actors, ready (heartbeat written) inside the block and stopped after it.

    Stopped also when it never gets ready, so a failed start leaves no process consuming from the next test's
    database and no log file open. ``command`` replaces the plain ``dramatiq`` command (``jobs worker ...``).
    """
    process = WorkerProcess(
        env,
        list(modules),
        list(queues),
        log_path=log_path,
        threads=threads,
        shutdown_timeout_ms=shutdown_timeout_ms,
        command=command,
    )
    try:
        process.wait_ready(client)
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def email_workers(
    env: dict[str, str], client: redis.Redis, log_dir: Path, *, threads: int = 8
) -> Iterator[Callable[[], WorkerProcess]]:
    """A starter of email workers (``actors.email`` on the email queue), each ready when returned.

    Every worker started inside the block is stopped at its end, the first ones too when a later one fails to
    start. Logs go to ``log_dir/worker-<n>.log``; the shutdown timeout is WorkerProcess's 30 s, so a stop
    lets in-flight sends finish.
    """
    numbers = itertools.count()
    with contextlib.ExitStack() as workers:

        def start() -> WorkerProcess:
            return workers.enter_context(
                running_worker(
                    env,
                    client,
                    log_dir / f"worker-{next(numbers)}.log",
                    modules=["actors.email"],
                    queues=["email"],
                    threads=threads,
                    shutdown_timeout_ms=30_000,
                )
            )

        yield start
