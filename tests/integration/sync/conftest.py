"""Fixtures of the sync tests: the SAM.gov simulator and the platform environment pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.testing.samgov_server import SamGovSimulator
from tests.support.helpers import use_env
from tests.support.samgov import SAMGOV_TEST_KEY, running_samgov

ADMIN = "ops@example.com"


@pytest.fixture
def simulator() -> Iterator[SamGovSimulator]:
    with running_samgov() as sim:
        yield sim


@pytest.fixture
def sync_env(
    platform_env: dict[str, str], simulator: SamGovSimulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The platform environment with SAM.gov pointed at the simulator and fast retries (this process too)."""
    return use_env(
        monkeypatch,
        {
            **platform_env,
            "SAM_GOV_BASE_URL": simulator.url,
            "SAM_GOV_API_KEY": SAMGOV_TEST_KEY,
            "SAM_GOV_PAGE_RETRIES": "1",
            "SAM_GOV_TIMEOUT_S": "5",
            "SYNC_PARTITION_DAYS": "30",
            "SYNC_MAX_RETRIES": "1",
            "SYNC_MIN_BACKOFF_MS": "50",
            "ADMIN_EMAILS": ADMIN,
            "EMAIL_BACKEND": "file",
            "PYTHONUNBUFFERED": "1",
        },
    )
