"""A Redis server owned by one test (or one benchmark run): killed with SIGKILL and restarted on the same port.

The shared Redis on 6379 cannot be killed without breaking every other run, and its ``INFO commandstats``
counts everybody's commands. This one is a ``redis-server`` child on a port the OS picked, with its own
directory. By default it keeps nothing on disk (``--save "" --appendonly no``): a restart starts empty, which
suits the benchmarks. ``durable=True`` turns on an append-only file fsynced at every write, so a SIGKILL loses
nothing and a restart comes back with every key, as a production broker configured for it would.

Tests use the :func:`owned_redis` fixture (import it into a ``conftest.py``) and point the platform at
:attr:`RedisServer.url` with ``REDIS_URL``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.helpers import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One ``redis-server`` process in ``directory``; :meth:`kill` and :meth:`start` keep its port."""

    def __init__(self, directory: Path, *, durable: bool = False, port: int | None = None) -> None:
        self.directory = directory
        self.durable = durable
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stats_client: redis.Redis | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url(db))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        persistence = (
            ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
            if self.durable
            else ["--save", "", "--appendonly", "no"]
        )
        return [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
            *persistence,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start (or restart after :meth:`kill`) on the same port; returns once it answers PING."""
        if self.running:
            raise RuntimeError("the Redis server is already running")
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log_tail()}")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    if probe.ping():
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within {timeout} s: {self.log_tail()}")
                time.sleep(0.02)
        finally:
            probe.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown save, connections reset, as when the host or the OOM killer takes it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self._stats_client is not None:
            self._stats_client.close()
            self._stats_client = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 20) -> str:
        log = self.directory / "redis.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def total_calls(self) -> dict[str, int]:
        """Calls per command since the start (``INFO commandstats``), e.g. ``{"evalsha": 120, ...}``.

        Commands run by a Lua script count too. One connection is kept for these calls, so that asking does not
        add a connection handshake to the counts.
        """
        if self._stats_client is None:
            self._stats_client = self.client()
        stats = self._stats_client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


@contextlib.contextmanager
def running_redis(directory: Path, *, durable: bool = False) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped on exit (a port race on the first start is retried)."""
    for attempt in range(3):
        server = RedisServer(directory, durable=durable)
        try:
            server.start()
            break
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def owned_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A durable test-owned Redis (append-only file, fsync always) that the test may SIGKILL and restart."""
    if not Path(REDIS_SERVER).exists():
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with running_redis(tmp_path / "redis", durable=True) as server:
        yield server
