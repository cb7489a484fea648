"""``jobs scheduler``: the sidecar process. Any number of replicas; the one holding the lock fires.

The leader also runs the outbox relay in a thread (:mod:`app.scheduler.relay`) unless ``SCHEDULER_RUN_RELAY`` is
false.

SIGTERM (or SIGINT) stops the loop and deletes the leader lock at once, so a standby takes over on its next
attempt (``leader.STANDBY_POLL_S``) rather than after the TTL. With ``JOBS_WORKER_LAUNCHER_PID`` in its
environment (tests, launchers like ``jobs worker``) the process also stops when that parent dies, as worker
groups do.
``/metrics`` and ``/health`` are served on ``SCHEDULER_HTTP_PORT``: ``/health`` answers 200 while the loop
turns (leader or standby), 503 when it has been stuck longer than the lock's TTL.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import click

from app.scheduler.clock import SystemClock
from app.scheduler.config import load_schedules
from app.scheduler.engine import Engine
from app.scheduler.fire import replica_id
from app.scheduler.leader import LeaderLock
from app.scheduler.relay import LeaderRelay

logger = logging.getLogger(__name__)


@click.command("scheduler")
@click.option("--http-port", type=click.IntRange(0, 65535), help="/metrics and /health port; 0 turns it off.")
def scheduler_command(http_port: int | None) -> None:
    """Run the scheduler sidecar (fires the schedule table; run two or more replicas)."""
    from app.cli import _settings
    from app.errors import SettingsError

    settings = _settings()
    try:
        schedules = load_schedules(settings.scheduler_timezone, settings.schedules_file)
    except SettingsError as err:
        click.echo(f"jobs: {err}", err=True)
        sys.exit(2)
    from app import observability

    observability.setup_sentry(settings)
    observability.setup_logging(settings)
    _die_with_launcher()
    replica = replica_id()
    lock = LeaderLock(replica, ttl_s=settings.scheduler_lock_ttl_s, renew_s=settings.scheduler_lock_renew_s)
    engine = Engine(
        schedules,
        lock=lock,
        clock=SystemClock(),
        replica=replica,
        dlq_sync_interval_s=settings.scheduler_dlq_sync_interval_s,
        relay=LeaderRelay(lock) if settings.scheduler_run_relay else None,
    )
    port = settings.scheduler_http_port if http_port is None else http_port
    if port:
        _serve(engine, port, stale_after_s=settings.scheduler_lock_ttl_s)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    enabled = [s.name for s in schedules if s.enabled]
    click.echo(
        f"scheduler {replica}: {len(enabled)} schedule(s) in {settings.scheduler_timezone}"
        + (", outbox relay on the leader" if settings.scheduler_run_relay else ", outbox relay off")
        + (f", metrics on :{port}/metrics" if port else ""),
        err=True,
    )
    engine.run(stop)
    observability.flush_logs()


def _die_with_launcher() -> None:
    from app.parent_death import LAUNCHER_PID_ENV, die_with_parent

    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if launcher and not die_with_parent(int(launcher)):
        sys.exit(1)  # the launcher died before we could tie ourselves to it


def health_app(engine: Engine, stale_after_s: float) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            from app.metrics import render_latest

            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [render_latest()]
        if path == "/health":
            last = engine.last_step
            alive = last is not None and (engine.clock.now() - last) < dt.timedelta(seconds=stale_after_s)
            role = b"leader" if engine.lock.leading() else b"standby"
            start_response("200 OK" if alive else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [role + b"\n" if alive else b"scheduler loop stuck\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("scheduler http request", extra={"request": format % args})


def _serve(engine: Engine, port: int, *, stale_after_s: float) -> None:
    server = make_server(
        "0.0.0.0",
        port,
        health_app(engine, stale_after_s),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="scheduler-http", daemon=True).start()
