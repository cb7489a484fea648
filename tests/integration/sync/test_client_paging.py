"""The SAM.gov client pages through the simulator: every notice exactly once, whatever ``offset`` means."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest

from app.sync.client import OpportunityPage, SamGovClient
from app.sync.paging import PageCursor
from app.testing.samgov_data import SamGovDataset
from app.testing.samgov_server import SamGovSimulator
from tests.support.samgov import running_samgov, samgov_client, samgov_server

pytestmark = pytest.mark.integration

__all__ = ["samgov_server"]

FROM, TO = date(2026, 8, 3), date(2026, 11, 30)


def walk(client: SamGovClient, **kwargs: Any) -> list[OpportunityPage]:
    options: dict[str, Any] = {"posted_from": FROM, "posted_to": TO, "purpose": "scheduled", "limit": 400}
    return list(client.iter_opportunity_pages(**{**options, **kwargs}))


def keys(pages: list[OpportunityPage]) -> list[str]:
    """Notice ids of every record yielded (a record without one by its solicitation and title)."""
    return [r["noticeId"] or f"no-id:{r['title']}" for p in pages for r in p.records]


@pytest.mark.parametrize(
    ("server_mode", "client_mode"),
    [("record", "auto"), ("page", "auto"), ("record", "record"), ("page", "page")],
)
def test_every_notice_exactly_once(
    samgov_server: SamGovSimulator, server_mode: str, client_mode: str
) -> None:
    # Given a server with one meaning of offset
    samgov_server.configure(offset_mode=server_mode)  # type: ignore[arg-type]
    expected = samgov_server.dataset.query(FROM, TO)
    with samgov_client(samgov_server, offset_mode=client_mode) as client:  # type: ignore[arg-type]
        # When the client walks the range
        pages = walk(client)
        # Then each notice arrives once, the walk ends complete, and auto mode learnt the server's mode
        seen = keys(pages)
        assert len(seen) == len(expected) == pages[-1].total_records
        assert len(set(seen)) == len(seen)
        ids = {r["noticeId"] for p in pages for r in p.records if r["noticeId"]}
        assert ids == set(samgov_server.dataset.valid_ids(FROM, TO))
        assert pages[-1].last and pages[-1].shortfall == 0
        assert [p.last for p in pages].count(True) == 1
        assert client.offset_mode == server_mode
        assert sum(p.requests_spent for p in pages) == samgov_server.count()
        # A second walk with the mode known sends no probe: ceil(total / limit) requests.
        before = samgov_server.count()
        assert len(keys(walk(client))) == len(expected)
        assert samgov_server.count() - before == -(-len(expected) // 400)


@pytest.mark.parametrize("server_mode", ["record", "page"])
def test_notices_posted_while_paging_are_not_repeated_and_the_gap_is_reported(
    samgov_server: SamGovSimulator, server_mode: str
) -> None:
    # Given a server where 3 notices are posted (listed first) after the walk's second request
    samgov_server.configure(offset_mode=server_mode)  # type: ignore[arg-type]
    expected = set(samgov_server.dataset.valid_ids(FROM, TO))
    samgov_server.post_while_paging(3, after_requests=2)
    with samgov_client(samgov_server, offset_mode=server_mode) as client:  # type: ignore[arg-type]
        pages = walk(client)
    # Then every notice of the original set arrives once: the shifted repeats are dropped and counted
    seen = keys(pages)
    assert len(set(seen)) == len(seen)
    assert expected <= set(seen)
    assert sum(p.duplicates for p in pages) == 3
    # And the three new notices the walk could not see are reported, not lost silently
    assert pages[-1].total_records == len(samgov_server.dataset.query(FROM, TO))
    assert pages[-1].shortfall == 3


@pytest.mark.parametrize("empty_mode", ["200", "404"])
def test_no_result_is_one_empty_last_page(samgov_server: SamGovSimulator, empty_mode: str) -> None:
    samgov_server.configure(empty_mode=empty_mode)  # type: ignore[arg-type]
    with samgov_client(samgov_server) as client:
        pages = walk(client, posted_from=date(2025, 1, 1), posted_to=date(2025, 1, 31))
    assert [(p.records, p.total_records, p.last) for p in pages] == [([], 0, True)]
    assert samgov_server.count() == 1


def test_prod_path_filters_and_an_amended_notice(samgov_server: SamGovSimulator) -> None:
    # Given the client on the /prod base path and an amended notice
    target = samgov_server.dataset.valid_ids(FROM, TO)[10]
    samgov_server.amend(target, title="Amended title", responseDeadLine="2026-12-24T12:00:00-05:00")
    with samgov_client(samgov_server) as plain:
        base = samgov_server.url + "/prod"
        with SamGovClient(base_url=base, api_key=plain._key, quota=None) as client:
            # When it asks for that notice and for one NAICS code
            (page,) = walk(client, noticeid=target)
            naics = [r for p in walk(client, ncode="541512") for r in p.records]
    # Then the amended notice keeps its id with the new fields; the filter applies
    assert [(r["noticeId"], r["title"], r["responseDeadLine"]) for r in page.records] == [
        (target, "Amended title", "2026-12-24T12:00:00-05:00")
    ]
    assert naics and all("541512" in r["naicsCodes"] for r in naics)
    assert {r.params["noticeid"] for r in samgov_server.requests[:1]} == {target}


def test_a_walk_resumes_from_a_cursor(samgov_server: SamGovSimulator) -> None:
    with samgov_client(samgov_server, offset_mode="record") as client:
        first = walk(client)
        cursor = first[2].next_cursor
        assert cursor == PageCursor(offset=1200, mode="record")
        rest = walk(client, start=cursor)
    assert keys(rest) == keys(first[3:])


def test_messy_records_are_passed_through_unchanged(samgov_server: SamGovSimulator) -> None:
    with samgov_client(samgov_server) as client:
        records = [r for p in walk(client) for r in p.records]
    shapes: Counter[str] = Counter()
    for r in records:
        shapes["no id"] += r["noticeId"] is None
        shapes["award amount string"] += isinstance((r["award"] or {}).get("amount"), str)
        shapes["no place key"] += "placeOfPerformance" not in r
        shapes["place null"] += "placeOfPerformance" in r and r["placeOfPerformance"] is None
        shapes["active No"] += r["active"] == "No"
        shapes["empty solicitation"] += r["solicitationNumber"] == ""
        shapes["contacts null"] += r["pointOfContact"] is None
    sols = Counter(r["solicitationNumber"] for r in records if r["solicitationNumber"])
    shapes["amendments"] = sum(1 for n in sols.values() if n > 1)
    assert all(shapes[k] > 0 for k in shapes), shapes
    assert len(shapes) == 8


def test_a_large_data_set_is_lazy() -> None:
    # 100,000 notices cost nothing until read: one page is generated per request.
    with running_samgov(size=100_000) as simulator, samgov_client(simulator) as client:
        window = (date(2026, 11, 1), date(2026, 11, 7))
        pages = walk(client, posted_from=window[0], posted_to=window[1], limit=1000)
        assert len(keys(pages)) == len(simulator.dataset.index_range(*window)) > 5000


def test_a_cursor_taken_before_the_mode_was_known_starts_over(samgov_server: SamGovSimulator) -> None:
    # Given a walk in auto mode stopped after its first page (the probe not sent yet)
    with samgov_client(samgov_server) as client:
        first = next(iter(client.iter_opportunity_pages(posted_from=FROM, posted_to=TO, purpose="scheduled")))
    assert first.next_cursor == PageCursor(offset=0, mode="auto")
    # When another client resumes from it, then every notice still arrives
    with samgov_client(samgov_server) as client:
        pages = walk(client, start=first.next_cursor)
    assert len(keys(pages)) == len(samgov_server.dataset.query(FROM, TO))


def test_the_shared_client_is_one_per_process_and_settings(
    samgov_server: SamGovSimulator, monkeypatch: pytest.MonkeyPatch, redis_client: object
) -> None:
    from app.settings import reset_settings
    from app.sync.client import close_shared
    from tests.support.samgov import SAMGOV_TEST_KEY

    monkeypatch.setenv("SAM_GOV_BASE_URL", samgov_server.url)
    monkeypatch.setenv("SAM_GOV_API_KEY", SAMGOV_TEST_KEY)
    reset_settings()
    try:
        client = SamGovClient.shared()
        assert SamGovClient.shared() is client
        walk(client)
        # The mode it detected serves the next walk: no probe, ceil(total / limit) requests
        before = samgov_server.count()
        walk(SamGovClient.shared())
        assert samgov_server.count() - before == -(-len(samgov_server.dataset.query(FROM, TO)) // 400)
        monkeypatch.setenv("SAM_GOV_PAGE_RETRIES", "1")
        reset_settings()
        assert SamGovClient.shared() is not client
    finally:
        close_shared()
        reset_settings()


def test_an_amendment_is_served_from_a_cached_data_set() -> None:
    dataset = SamGovDataset(size=500, cache_records=1000)
    with running_samgov(dataset=dataset) as simulator, samgov_client(simulator) as client:
        before = {r["noticeId"]: r for p in walk(client) for r in p.records}
        target = simulator.dataset.valid_ids(FROM, TO)[7]
        simulator.amend(target, title="Amended while cached")
        after = {r["noticeId"]: r for p in walk(client) for r in p.records}
    assert before[target]["title"] != "Amended while cached"
    assert after[target]["title"] == "Amended while cached"
    assert {k: v for k, v in after.items() if k != target} == {k: v for k, v in before.items() if k != target}
