"""Fixtures of the email unit tests: the SendGrid simulator on loopback (no Redis, no PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.testing.sendgrid_server import SendGridSimulator

API_KEY = "SG.unit-test-key"


@pytest.fixture
def simulator() -> Iterator[SendGridSimulator]:
    with SendGridSimulator(api_key=API_KEY, verified_senders=frozenset({"noreply@example.com"})) as sim:
        yield sim
