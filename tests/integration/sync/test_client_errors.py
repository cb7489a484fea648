"""How the SAM.gov client classifies failures: retried in place, rate limited, rejected, refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.errors import PermanentError, RateLimited, RetryableError
from app.sync.client import OpportunityPage, SamGovClient, retry_after_from
from app.sync.errors import SamGovAuthError, SamGovRateLimited, SamGovRejected, SamGovUnavailable
from app.sync.quota import seconds_to_utc_midnight
from app.testing.samgov_server import Fault, SamGovSimulator
from tests.support.samgov import samgov_client, samgov_server

pytestmark = pytest.mark.integration

__all__ = ["samgov_server"]

FROM, TO = date(2026, 8, 3), date(2026, 11, 30)
LIMIT = 500


def walk(
    client: SamGovClient, pages: list[OpportunityPage] | None = None, **kwargs: Any
) -> list[OpportunityPage]:
    out = [] if pages is None else pages
    options: dict[str, Any] = {"posted_from": FROM, "posted_to": TO, "purpose": "scheduled", "limit": LIMIT}
    for page in client.iter_opportunity_pages(**{**options, **kwargs}):
        out.append(page)
    return out


FAULTS = {
    "503": Fault.error(503),
    "500": Fault.error(500),
    "reset": Fault.reset(),
    "timeout": Fault.slow(2.0),
    "truncated": Fault.truncated(),
    "truncated-short-read": Fault.truncated(honest_length=False),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_transient_failure_on_page_k_is_retried_in_place(samgov_server: SamGovSimulator, name: str) -> None:
    # Given page 3 (offset 1000 in record mode) fails twice, then answers
    samgov_server.script(FAULTS[name], times=2, api="opportunities", when={"offset": str(2 * LIMIT)})
    with samgov_client(samgov_server, offset_mode="record", timeout_s=0.5, page_retries=3) as client:
        # When the client walks the range
        pages = walk(client)
    # Then every notice arrives once, and page 3 alone cost three requests, all for the same offset
    total = len(samgov_server.dataset.query(FROM, TO))
    assert sum(len(p.records) for p in pages) == total
    assert [p.requests_spent for p in pages] == [1, 1, 3, 1, 1, 1]
    offsets = [r.offset for r in samgov_server.requests]
    assert offsets == [0, 500, 1000, 1000, 1000, 1500, 2000, 2500]
    assert [r.fault for r in samgov_server.requests].count(FAULTS[name].kind) == 2


def test_a_persistent_failure_raises_unavailable_after_the_retries(samgov_server: SamGovSimulator) -> None:
    samgov_server.script(Fault.error(503), times=100, api="opportunities", when={"offset": "500"})
    pages: list[OpportunityPage] = []
    with (
        samgov_client(samgov_server, offset_mode="record", page_retries=2) as client,
        pytest.raises(SamGovUnavailable) as caught,
    ):
        walk(client, pages)
    # The first page was delivered; the second was tried 1 + 2 times, then the error is retryable for the job
    assert [p.offset for p in pages] == [0]
    assert [r.offset for r in samgov_server.requests] == [0, 500, 500, 500]
    assert isinstance(caught.value, RetryableError)
    assert "503" in str(caught.value)


def test_429_mid_run_raises_rate_limited_until_next_access_time(samgov_server: SamGovSimulator) -> None:
    # Given SAM.gov throttles the third page with nextAccessTime a few seconds ahead
    samgov_server.script(Fault.rate_limited(next_access_in_s=5), api="opportunities", when={"offset": "1000"})
    pages: list[OpportunityPage] = []
    with samgov_client(samgov_server, offset_mode="record") as client:
        with pytest.raises(SamGovRateLimited) as caught:
            walk(client, pages)
        # Then the pages before stay delivered, nothing is retried in place, and the wait ends at that time
        assert [p.offset for p in pages] == [0, 500]
        assert samgov_server.count() == 3
        assert isinstance(caught.value, RateLimited)
        assert 4 <= caught.value.retry_after <= 7
        # And the walk resumes from where it stopped once SAM.gov lets it
        rest = walk(client, start=pages[-1].next_cursor)
    assert sum(len(p.records) for p in pages + rest) == len(samgov_server.dataset.query(FROM, TO))


def test_429_without_next_access_time_waits_for_utc_midnight(samgov_server: SamGovSimulator) -> None:
    samgov_server.script(Fault.rate_limited(next_access_in_s=None))
    with samgov_client(samgov_server) as client, pytest.raises(SamGovRateLimited) as caught:
        walk(client)
    expected = seconds_to_utc_midnight(datetime.now(UTC))
    assert abs(caught.value.retry_after - expected) < 60


def test_the_servers_own_daily_quota_gives_429(samgov_server: SamGovSimulator) -> None:
    samgov_server.configure(daily_quota=2)
    with (
        samgov_client(samgov_server, offset_mode="record") as client,
        pytest.raises(SamGovRateLimited) as caught,
    ):
        walk(client)
    assert samgov_server.count(status=429) == 1
    assert caught.value.retry_after == pytest.approx(seconds_to_utc_midnight(datetime.now(UTC)), abs=60)


def test_next_access_time_is_read_in_sam_govs_format() -> None:
    now = datetime(2026, 6, 10, 22, 0, tzinfo=UTC)
    body = {"nextAccessTime": "2026-Jun-11 00:00:00+0000 UTC"}
    assert retry_after_from(body, now) == 7200
    assert retry_after_from({"nextAccessTime": "soon"}, now) == 7200
    assert retry_after_from(None, now) == 7200


@pytest.mark.parametrize("status", [401, 403])
def test_a_bad_key_is_permanent_and_names_the_setting(samgov_server: SamGovSimulator, status: int) -> None:
    samgov_server.configure(auth_status=status)
    with samgov_client(samgov_server, api_key="wrong-key") as client:
        with pytest.raises(SamGovAuthError) as caught:
            walk(client)
        with pytest.raises(SamGovAuthError):
            list(client.iter_entity_pages(["ABCDEFGHJKLM"], purpose="on_demand"))
    assert isinstance(caught.value, PermanentError)
    assert caught.value.status == status
    assert "check SAM_GOV_API_KEY" in str(caught.value)
    assert samgov_server.count() == 2  # never retried


def test_400_is_permanent_with_sam_govs_message(samgov_server: SamGovSimulator) -> None:
    samgov_server.script(Fault.error(400))
    with samgov_client(samgov_server) as client, pytest.raises(SamGovRejected) as caught:
        walk(client)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.reason == "simulated 400"
    assert samgov_server.count() == 1


def test_the_simulator_rejects_what_sam_gov_rejects(samgov_server: SamGovSimulator) -> None:
    # The client's own checks mirror these, so it spends no request on a query SAM.gov would refuse.
    import httpx

    url = samgov_server.url + "/opportunities/v2/search"
    key = {"api_key": "sam-test-key-0123456789"}
    cases = {
        "PostedFrom and PostedTo are mandatory": {},
        "Invalid Date Entered. Expected date format is MM/dd/yyyy": {
            "postedFrom": "2026-01-01",
            "postedTo": "x",
        },
        "Date range must be 1 year(s) apart": {"postedFrom": "01/01/2025", "postedTo": "02/01/2026"},
        "Limit valid range is 0-1000. Please provide valid input.": {
            "postedFrom": "01/01/2026",
            "postedTo": "01/02/2026",
            "limit": "1001",
        },
    }
    for message, params in cases.items():
        response = httpx.get(url, params={**params, **key})
        assert (response.status_code, response.json()["errorMessage"]) == (400, message)
    entities = httpx.get(samgov_server.url + "/entity-information/v3/entities", params={"size": "11", **key})
    assert (entities.status_code, entities.json()["errorMessage"]) == (400, "Size Cannot Exceed 10 Records")
    with samgov_client(samgov_server) as client, pytest.raises(SamGovRejected, match="1 year"):
        walk(client, posted_from=date(2025, 1, 1), posted_to=date(2026, 2, 1))
    assert samgov_server.count() == 5
