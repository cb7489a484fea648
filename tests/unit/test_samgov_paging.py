"""The paging rules of the SAM.gov client, against an in-memory server of either offset meaning (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.sync.paging import EXTRA_PAGES, STALE_PAGES, PageCursor, PageWalk


def notices(n: int) -> list[dict[str, Any]]:
    return [{"noticeId": f"{i:032x}"} for i in range(n)]


def serve(records: list[dict[str, Any]], mode: str, offset: int, limit: int) -> list[dict[str, Any]]:
    start = offset * limit if mode == "page" else offset
    return records[start : start + limit]


def run(walk: PageWalk, records: list[dict[str, Any]], mode: str) -> list[str]:
    seen: list[str] = []
    while not walk.done:
        fresh, _ = walk.accept(serve(records, mode, walk.offset, walk.limit), len(records))
        seen += [r["noticeId"] for r in fresh]
    return seen


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=60),
    limit=st.integers(min_value=1, max_value=12),
    server=st.sampled_from(["page", "record"]),
)
def test_auto_mode_gets_every_record_once_whatever_the_server(total: int, limit: int, server: str) -> None:
    records = notices(total)
    walk = PageWalk(limit=limit, mode="auto")
    seen = run(walk, records, server)
    assert seen == [r["noticeId"] for r in records]
    assert walk.shortfall == 0
    # At most one request more than the pages needed (the probe), never a loop
    assert walk.pages <= max(1, -(-total // limit)) + 1


def test_a_server_that_ignores_offset_cannot_hold_the_walk() -> None:
    # Given a server answering the same full page whatever the offset, announcing more records than it serves
    page = notices(10)
    walk = PageWalk(limit=10, mode="page")
    while not walk.done:
        walk.accept(page, 1000)
    # Then the walk stops after two pages that brought nothing new and reports what it never saw
    assert walk.pages == 1 + STALE_PAGES
    assert walk.shortfall == 990


def test_the_page_cap_ends_a_walk_whose_total_keeps_growing() -> None:
    # Given a server whose totalRecords grows by a page with every request (new pages keep coming)
    walk = PageWalk(limit=10, mode="record")
    served = 0
    while not walk.done:
        walk.accept(notices(walk.offset + 10)[walk.offset :], 100 + served * 10)
        served += 1
    # Then the walk stops at ceil(first total / limit) + EXTRA_PAGES requests and reports the gap
    assert walk.pages == 100 // 10 + EXTRA_PAGES
    assert walk.shortfall == walk.total - len(walk.seen) > 0


def test_a_short_page_ends_the_walk_even_if_total_says_more() -> None:
    walk = PageWalk(limit=10, mode="record")
    walk.accept(notices(10), 25)
    walk.accept(notices(14)[10:], 25)
    assert walk.done and walk.shortfall == 11


def test_records_without_id_are_kept_once() -> None:
    walk = PageWalk(limit=3, mode="record")
    odd = {"noticeId": None, "title": "x"}
    fresh, duplicates = walk.accept([odd, *notices(2)], 5)
    assert fresh == [odd, *notices(2)] and duplicates == 0
    fresh, duplicates = walk.accept([odd, {"noticeId": "", "title": "y"}], 5)
    assert fresh == [{"noticeId": "", "title": "y"}] and duplicates == 1


def test_cursors() -> None:
    walk = PageWalk(limit=10, mode="record", start=PageCursor(30, "record"))
    assert walk.offset == 30
    assert PageWalk(limit=10, start=PageCursor(1, "auto")).offset == 0
    with pytest.raises(ValueError, match="limit"):
        PageWalk(limit=0)
