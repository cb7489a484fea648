"""The SAM.gov simulator for tests: a fixture that runs it in a thread of the test process.

Worker processes started by a test reach it over HTTP like any other process (``SAM_GOV_BASE_URL`` =
``samgov_server.url``, ``SAM_GOV_API_KEY`` = ``SAMGOV_TEST_KEY``). Its control API is the simulator object itself:
``configure(offset_mode=..., empty_mode=..., daily_quota=..., auth_status=...)``, ``script(Fault..., on_request=
| api= when=)``, ``amend``, ``post``, ``post_while_paging``, ``requests`` / ``count()``, ``reset()``.
Import the fixture into a test module or conftest: ``from tests.support.samgov import samgov_server``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from app.sync.client import SamGovClient
from app.sync.quota import QuotaBudget
from app.testing.samgov_data import SamGovDataset
from app.testing.samgov_server import SamGovSimulator

#: The key the test simulator accepts.
SAMGOV_TEST_KEY = "sam-test-key-0123456789"
#: The default test data set: 3,000 notices over 120 days ending 2026-11-30.
TEST_DATASET_SIZE = 3000


@contextlib.contextmanager
def running_samgov(*, size: int = TEST_DATASET_SIZE, **options: Any) -> Iterator[SamGovSimulator]:
    """A simulator on a free port of 127.0.0.1 for the duration of the block (options: SamGovSimulator's)."""
    dataset = options.pop("dataset", None) or SamGovDataset(size=size)
    with SamGovSimulator(dataset=dataset, api_key=SAMGOV_TEST_KEY, **options) as simulator:
        yield simulator


@pytest.fixture
def samgov_server() -> Iterator[SamGovSimulator]:
    """A fresh simulator per test (record offsets, 200 for no results, no quota, no latency)."""
    with running_samgov() as simulator:
        yield simulator


def samgov_client(
    simulator: SamGovSimulator, *, quota: QuotaBudget | None = None, **options: Any
) -> SamGovClient:
    """A client of ``simulator`` that retries fast (backoff 10 ms unless given)."""
    options.setdefault("backoff_s", 0.01)
    options.setdefault("backoff_max_s", 0.05)
    options.setdefault("api_key", SAMGOV_TEST_KEY)
    return SamGovClient(base_url=simulator.url, quota=quota, **options)
