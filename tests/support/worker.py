"""Start a real worker process (``jobs worker`` or plain ``dramatiq``) for a test and stop it cleanly.

``ROOT`` and ``wait_for`` live in :mod:`tests.support.helpers`; they are re-exported here for older imports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from tests.support.helpers import ROOT, wait_for

__all__ = ["ROOT", "WorkerProcess", "wait_for"]


class WorkerProcess:
    """A ``dramatiq`` worker subprocess on given modules and queues; its output goes to a log file."""

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
        self.log_path = log_path
        self.queues = queues
        full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.command = command or [
            sys.executable,
            "-m",
            "dramatiq",
            "app.broker",
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
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            self.command,
            env=full_env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, client: redis.Redis, timeout: float = 30.0) -> None:
        """Ready once every queue has a heartbeat key (written by WorkerLifecycle after boot)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            return all(client.keys(f"jobs:heartbeat:{q}:*") for q in self.queues)

        wait_for(ready, timeout=timeout, what="worker heartbeat")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

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

    def stop(self, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode
