"""``jobs worker QUEUE``: one worker group = Dramatiq's process group + a small /metrics and /health server.

The Dramatiq CLI forks the worker processes; this parent process (the launcher) prepares a clean Prometheus
multiprocess directory for them (it must exist before any child imports prometheus_client), serves every child's
metrics aggregated with the queue gauges read from Redis, and forwards SIGTERM/SIGINT so that the group stops
gracefully: running jobs get ``--shutdown-timeout`` seconds to finish, then whatever is left is requeued.

The group dies with any of its processes (docs/architecture.md "Process supervision"): Dramatiq's main process
gets SIGTERM when the launcher dies (:mod:`app.worker_main`), each worker process when the main process dies
(:mod:`app.worker_boot`), and Dramatiq's main process stops the group when a worker process dies. The launcher
adopts the workers of a main process that died (a child subreaper) and exits only once they have stopped, so a
supervisor never restarts a group while the old one still runs unseen.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from app.constants import WORKER_DEFAULTS, WORKER_HTTP_PORTS
from app.parent_death import LAUNCHER_PID_ENV, become_subreaper, child_pids

logger = logging.getLogger(__name__)

#: Seconds beyond the shutdown timeout that adopted worker processes get to stop before they are killed.
ORPHAN_GRACE_S = 10


@dataclass(frozen=True)
class WorkerGroup:
    queue: str
    processes: int
    threads: int
    shutdown_timeout_s: int
    http_port: int
    modules: tuple[str, ...] = ()

    @classmethod
    def for_queue(
        cls,
        queue: str,
        *,
        processes: int | None = None,
        threads: int | None = None,
        shutdown_timeout_s: int = 30,
        http_port: int | None = None,
        modules: Iterable[str] = (),
    ) -> WorkerGroup:
        default_processes, default_threads = WORKER_DEFAULTS.get(queue, (1, 4))
        return cls(
            queue=queue,
            processes=processes or default_processes,
            threads=threads or default_threads,
            shutdown_timeout_s=shutdown_timeout_s,
            http_port=WORKER_HTTP_PORTS.get(queue, 0) if http_port is None else http_port,
            modules=tuple(modules) or (f"actors.{queue}",),
        )

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "app.worker_main", "app.worker_boot", *self.modules,
            "--queues", self.queue,
            "--processes", str(self.processes),
            "--threads", str(self.threads),
            "--worker-shutdown-timeout", str(self.shutdown_timeout_s * 1000),
            "--skip-logging",
        ]  # fmt: skip


def prepare_multiproc_dir(queue: str, configured: Path | None) -> Path:
    """A clean directory per worker group: stale files of dead processes would skew the sums."""
    directory = configured or Path(tempfile.gettempdir()) / f"jobs-prometheus-{queue}-{os.getpid()}"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def health_ok(queue: str) -> bool:
    """A live worker of ``queue`` on this host has refreshed its heartbeat key within its TTL."""
    from app.redis_client import get_redis
    from app.transport.registry import live_heartbeat_keys

    return bool(live_heartbeat_keys(get_redis(), queue, socket.gethostname()))


def metrics_app(queue: str) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            from app.metrics import render_latest

            body = render_latest([queue])
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/health":
            healthy = health_ok(queue)
            start_response(
                "200 OK" if healthy else "503 Service Unavailable", [("Content-Type", "text/plain")]
            )
            return [b"ok\n" if healthy else b"no live worker heartbeat\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics request", extra={"request": format % args})


def serve_metrics(queue: str, port: int) -> _ThreadingWSGIServer:
    server = make_server(
        "0.0.0.0", port, metrics_app(queue), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
    return server


def reap_orphans(grace_s: float) -> None:
    """Wait up to ``grace_s`` for the processes this launcher adopted, then SIGKILL and reap what is left.

    They are the worker processes of a Dramatiq main process that died: the kernel sent them SIGTERM, so they
    finish their running jobs within the shutdown timeout and requeue the rest.
    """
    deadline = time.monotonic() + grace_s
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in child_pids(os.getpid()):
        logger.warning("worker process outlived the shutdown timeout; killing it", extra={"pid": pid})
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def wait_for_main(child: subprocess.Popen[bytes]) -> int:
    """Wait for Dramatiq's main process, reaping any adopted orphan that exits meanwhile; its exit code."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode


def run(group: WorkerGroup, *, multiproc_dir: Path | None = None) -> int:
    """Run the group until it stops and none of its processes is left; returns its exit code."""
    directory = prepare_multiproc_dir(group.queue, multiproc_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    adopting = become_subreaper()
    server = serve_metrics(group.queue, group.http_port) if group.http_port else None
    # A session of its own: a signal sent to this process's group (Ctrl-C in a terminal, a supervisor) reaches
    # only this process, which forwards it once. Dramatiq's worker processes treat a second SIGTERM as "kill now".
    # The launcher's pid lets Dramatiq's main process tie itself to this one (app.worker_main).
    env = {**os.environ, LAUNCHER_PID_ENV: str(os.getpid())}
    child = subprocess.Popen(group.command(), start_new_session=True, env=env)

    def forward(signum: int, _frame: object) -> None:
        # SIGHUP (the terminal went away) stops the group like SIGTERM: Dramatiq's own SIGHUP "reload" re-executes
        # whatever ``python`` is first on PATH, which outside an activated venv cannot import Dramatiq.
        child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        code = wait_for_main(child) if adopting else child.wait()
        if adopting:
            reap_orphans(group.shutdown_timeout_s + ORPHAN_GRACE_S)
        return code
    finally:
        if server is not None:
            server.shutdown()
        if multiproc_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
