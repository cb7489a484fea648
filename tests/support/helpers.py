"""The small helpers every test layer shares: free ports, polling with a deadline, test messages, the global broker.

One place for them, so that a fix (a port race, a clearer timeout message) reaches every test at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest
    from dramatiq import Message

#: The repository checkout (subprocesses run from it).
ROOT = Path(__file__).resolve().parents[2]
#: The queue of the test actors (tests/support/actors.py, tests/support/observability_actors.py).
TEST_QUEUE = "test"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on ``host`` right now (bound to port 0, then released).

    Another process may take it before the caller binds it; never hard-code a port instead.
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for(
    condition: Callable[[], object], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def jobs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``jobs ARGS`` as the operator ``alice`` runs it: a separate process on the checkout, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env, "JOBS_OPERATOR": "alice"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    """``env`` set in this process too (for the code a test calls directly), settings re-read; returns ``env``.

    The same variables go to the subprocesses a test starts, so that both sides see one configuration.
    """
    from app.settings import reset_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    return env


def send_test_message(
    actor: str,
    *,
    queue: str = TEST_QUEUE,
    options: dict[str, Any] | None = None,
    delay_ms: int | None = None,
    **kwargs: Any,
) -> Message[Any]:
    """Publish one message to ``actor`` by name, bypassing the catalogue (test actors are not in it).

    Returns the Dramatiq ``Message`` as stored (its ``message_id`` finds it in logs, history and dead letters).
    """
    from dramatiq import Message

    from app.transport.publish import publish

    message: Message[Any] = Message(
        queue_name=queue, actor_name=actor, args=(), kwargs=kwargs, options=dict(options or {})
    )
    return publish([(message, delay_ms)])[0]


@contextlib.contextmanager
def global_broker_restored() -> Iterator[None]:
    """Dramatiq's global broker as it was before the block, whatever the block set (a StubBroker, say).

    Without it a stub set by one test stays global: later tests would publish into the stub (publishing reuses
    the global broker) and declare their actors on it.
    """
    import dramatiq.broker

    saved = dramatiq.broker.global_broker
    try:
        yield
    finally:
        dramatiq.broker.global_broker = saved
