"""The SAM.gov key travels in every URL; it must never reach a log line, an exception or a Sentry event."""

from __future__ import annotations

import logging
import traceback
from datetime import date

import pytest

from app.sync.client import redact
from app.sync.errors import SamGovAuthError, SamGovRateLimited, SamGovRejected, SamGovUnavailable
from app.testing.samgov_server import Fault, SamGovSimulator
from tests.support.samgov import SAMGOV_TEST_KEY, samgov_client, samgov_server

pytestmark = pytest.mark.integration

__all__ = ["samgov_server"]


def test_redact() -> None:
    url = "https://api.sam.gov/opportunities/v2/search?limit=10&api_key=SECRET-1&offset=0"
    assert redact(url) == "https://api.sam.gov/opportunities/v2/search?limit=10&api_key=***&offset=0"
    assert redact("key SECRET-2 leaked", "SECRET-2") == "key *** leaked"


def test_no_log_line_or_exception_carries_the_key(
    samgov_server: SamGovSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    # Given every failure the client classifies, and a successful walk, with every logger at DEBUG
    caplog.set_level(logging.DEBUG)
    window = {"posted_from": date(2026, 11, 1), "posted_to": date(2026, 11, 30), "purpose": "scheduled"}
    errors: list[BaseException] = []
    scripts: list[tuple[Fault | None, type[BaseException] | None]] = [
        (None, None),
        (Fault.error(503), SamGovUnavailable),
        (Fault.reset(), SamGovUnavailable),
        (Fault.slow(1.0), SamGovUnavailable),
        (Fault.truncated(honest_length=False), SamGovUnavailable),
        (Fault.error(400), SamGovRejected),
        (Fault.rate_limited(), SamGovRateLimited),
    ]
    with samgov_client(samgov_server, page_retries=1, timeout_s=0.3) as client:
        for fault, expected in scripts:
            if fault is not None:
                samgov_server.script(fault, times=2)
            try:
                pages = list(client.iter_opportunity_pages(**window))  # type: ignore[arg-type]
                list(client.iter_entity_pages([], purpose="scheduled", registrationStatus="A"))
            except Exception as err:
                assert expected is not None and isinstance(err, expected), err
                errors.append(err)
            else:
                assert expected is None and pages
            samgov_server.clear_faults()
    with samgov_client(samgov_server, api_key="wrong-" + SAMGOV_TEST_KEY) as client:
        with pytest.raises(SamGovAuthError) as caught:
            list(client.iter_opportunity_pages(**window))  # type: ignore[arg-type]
        errors.append(caught.value)
    # Then httpx did log the requests (redacted), and no text anywhere holds the key
    request_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert request_lines and all("api_key=***" in line for line in request_lines)
    texts = [r.getMessage() for r in caplog.records]
    texts += [repr(r.__dict__) for r in caplog.records]
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), *traceback.format_exception(error)]
    assert len(errors) == 7
    assert not [t for t in texts if SAMGOV_TEST_KEY in t]
