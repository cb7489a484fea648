"""A child process for a test: its own session, its output in a log file, and tied to the test process.

Workers (tests/support/worker.py) and scheduler replicas (tests/support/scheduler.py) start the same way and stop
the same way; one place for both, so that a fix to the tie or to the stop reaches every kind of process.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from app.parent_death import LAUNCHER_PID_ENV
from tests.support.helpers import ROOT


class LoggedProcess:
    """``command`` run from the checkout in a new session, stdout and stderr into ``log_path``.

    With ``tied`` the child gets this process's pid as its launcher (app.parent_death), as ``jobs worker`` ties a
    group to its launcher: a test run that is killed or times out leaves no process consuming the test's Redis
    database. A command that does not read the launcher pid (Dramatiq's own command line) passes ``tied=False``.
    """

    #: Seconds stop() waits after SIGTERM before it kills the whole process group.
    stop_timeout: float = 20.0

    def __init__(
        self, command: Sequence[str], env: dict[str, str], log_path: Path, *, tied: bool = True
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        if tied:
            full_env[LAUNCHER_PID_ENV] = str(os.getpid())
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            self.command,
            env=full_env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM to the child, then SIGKILL to its group if it is not gone within ``timeout``; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode
