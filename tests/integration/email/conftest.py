"""Fixtures of the email integration tests: the SendGrid simulator, the environment pointing at it, workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from app.testing.sendgrid_server import SendGridSimulator
from tests.support.helpers import use_env
from tests.support.worker import WorkerProcess, email_workers

API_KEY = "SG.integration-test-key"
BASE_URL = "https://app.example.com"


@pytest.fixture
def simulator() -> Iterator[SendGridSimulator]:
    with SendGridSimulator(api_key=API_KEY) as sim:
        yield sim


@pytest.fixture
def email_env(
    platform_env: dict[str, str], simulator: SendGridSimulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The platform environment with EMAIL_BACKEND=sendgrid pointed at the simulator (this process too)."""
    return use_env(
        monkeypatch,
        {
            **platform_env,
            "EMAIL_BACKEND": "sendgrid",
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_HOST": simulator.url,
            "SENDGRID_TIMEOUT_S": "5",
            "EMAIL_FROM": "Jobs <noreply@example.com>",
            "PUBLIC_BASE_URL": BASE_URL,
            # Workers' log lines reach their log file as they are written (tests read them while workers run).
            "PYTHONUNBUFFERED": "1",
        },
    )


@pytest.fixture
def start_worker(
    email_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    """Starts the email worker group (8 threads) on this test's Redis database and schema."""
    with email_workers(email_env, redis_client, tmp_path) as start:
        yield start
