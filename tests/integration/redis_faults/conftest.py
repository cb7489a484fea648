"""Fixtures of the Redis-fault tests: a Redis server the test owns, the platform pointed at it, a real worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq.broker
import pytest

from app.testing.sendgrid_server import Latency, SendGridSimulator
from tests.support.helpers import use_env
from tests.support.redis_server import RedisServer, owned_redis  # noqa: F401  (a fixture)
from tests.support.worker import WorkerProcess, email_workers

API_KEY = "SG.redis-fault-test-key"


@pytest.fixture
def latency() -> Latency:
    """The simulator's answer delay; a test overrides this fixture to hold a send in flight."""
    return Latency()


@pytest.fixture
def simulator(latency: Latency) -> Iterator[SendGridSimulator]:
    with SendGridSimulator(api_key=API_KEY, latency=latency) as sim:
        yield sim


@pytest.fixture
def fault_env(
    platform_env: dict[str, str],
    owned_redis: RedisServer,  # noqa: F811
    simulator: SendGridSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The email platform's environment on the test-owned Redis (this process too) and the simulator."""
    env = {
        **platform_env,
        "REDIS_URL": owned_redis.url(),
        "EMAIL_BACKEND": "sendgrid",
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_API_HOST": simulator.url,
        "SENDGRID_TIMEOUT_S": "10",
        "EMAIL_FROM": "Jobs <noreply@example.com>",
        "PUBLIC_BASE_URL": "https://app.example.com",
    }
    # A broker another test set up in this process points at the shared Redis: publish through our own.
    monkeypatch.setattr(dramatiq.broker, "global_broker", None)
    return use_env(monkeypatch, env)


@pytest.fixture
def start_email_worker(
    fault_env: dict[str, str],
    owned_redis: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> Iterator[Callable[[], WorkerProcess]]:
    """Starts an email worker (1 process x 8 threads) on the test-owned Redis."""
    client = owned_redis.client()
    try:
        with email_workers(fault_env, client, tmp_path) as start:
            yield start
    finally:
        client.close()
