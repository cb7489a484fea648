"""Entities: at most 10 UEIs and 10 records a request, paged through ``nextLink``."""

from __future__ import annotations

import pytest

from app.testing.samgov_server import SamGovSimulator
from tests.support.samgov import SAMGOV_TEST_KEY, samgov_client, samgov_server

pytestmark = pytest.mark.integration

__all__ = ["samgov_server"]


def test_ueis_are_asked_ten_at_a_time(samgov_server: SamGovSimulator) -> None:
    # Given 23 known UEIs, a repeat and an unknown one
    dataset = samgov_server.dataset
    ueis = [dataset.uei(i) for i in range(23)]
    with samgov_client(samgov_server) as client:
        pages = list(client.iter_entity_pages([*ueis, ueis[0], "ZZZZZZZZZZZZ"], purpose="on_demand"))
    # Then three requests of at most 10 distinct UEIs return each known entity once
    got = [r["entityRegistration"]["ueiSAM"] for p in pages for r in p.records]
    assert sorted(got) == sorted(ueis)
    assert [len(p.ueis) for p in pages] == [10, 10, 4]
    sent = [r.params["ueiSAM"].split("~") for r in samgov_server.requests]
    assert [len(s) for s in sent] == [10, 10, 4]
    assert all(r.params["size"] == "10" for r in samgov_server.requests)
    assert {r["entityRegistration"]["registrationStatus"] for p in pages for r in p.records} <= {
        "Active",
        "Expired",
    }


def test_a_filter_query_follows_next_link_to_the_end(samgov_server: SamGovSimulator) -> None:
    # Given more active entities than one page holds
    dataset = samgov_server.dataset
    active = {dataset.uei(e) for e in dataset.iter_entities() if dataset.entity_status_code(e) == "A"}
    assert len(active) > 30
    with samgov_client(samgov_server) as client:
        pages = list(client.iter_entity_pages([], purpose="scheduled", registrationStatus="A"))
    # Then the pages follow one another to the last (which has no nextLink), every entity once
    got = [r["entityRegistration"]["ueiSAM"] for p in pages for r in p.records]
    assert len(got) == len(set(got)) and set(got) == active
    assert [p.page for p in pages] == list(range(len(pages)))
    assert [r.params["page"] for r in samgov_server.requests] == [str(p.page) for p in pages]
    # And the api_key SAM.gov echoes in nextLink is never sent twice in one query string
    assert all("api_key" not in r.params for r in samgov_server.requests)
    assert SAMGOV_TEST_KEY not in repr(pages)


def test_no_entity_found_is_an_empty_page_in_both_modes(samgov_server: SamGovSimulator) -> None:
    with samgov_client(samgov_server) as client:
        for mode in ("200", "404"):
            samgov_server.configure(empty_mode=mode)  # type: ignore[arg-type]
            pages = list(client.iter_entity_pages(["ZZZZZZZZZZZZ"], purpose="on_demand"))
            assert [(p.records, p.total_records) for p in pages] == [([], 0)]
