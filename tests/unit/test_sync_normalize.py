"""Normalization of SAM.gov's messy records, the payload hash, date windows and the sync argument schemas."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from app.errors import InvalidJob
from app.jobs import spec_for
from app.sync.normalize import Rejected, entity_row, opportunity_row, payload_hash
from app.sync.runs import windows

NOTICE = "0123456789abcdef0123456789ABCDEF"


def record(**fields: Any) -> dict[str, Any]:
    return {"noticeId": NOTICE, "postedDate": "2026-11-02", **fields}


def test_a_minimal_record_gets_lenient_defaults() -> None:
    row = opportunity_row(record(award=None, placeOfPerformance=None, officeAddress="", naicsCodes=None))
    assert row.notice_id == NOTICE.lower()
    assert row.columns["title"] == "" and row.columns["active"] is True
    assert row.columns["award_amount"] is None and row.columns["naics_codes"] == []
    assert row.columns["agency_names"] == [] and row.columns["department"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01T17:00:00-05:00", dt.datetime(2026, 12, 1, 22, tzinfo=dt.UTC)),
        ("2026-12-01T17:00:00Z", dt.datetime(2026, 12, 1, 17, tzinfo=dt.UTC)),
        ("2026-12-01", dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=dt.UTC)),
        (None, None),
        ("", None),
    ],
)
def test_deadlines_become_aware_utc(value: str | None, expected: dt.datetime | None) -> None:
    assert opportunity_row(record(responseDeadLine=value)).columns["response_deadline"] == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"responseDeadLine": "2026-12-01T17:00:00"}, "no UTC offset"),
        ({"responseDeadLine": "soon"}, "responseDeadLine"),
        ({"postedDate": None}, "postedDate is missing"),
        ({"noticeId": "abc"}, "noticeId"),
        ({"award": {"amount": "a lot"}}, "award.amount"),
        ({"award": {"amount": True}}, "award.amount"),
    ],
)
def test_wrong_facts_are_rejected_with_their_reason(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        opportunity_row(record(**fields))


def test_amounts_active_naics_and_agency_path() -> None:
    row = opportunity_row(
        record(
            award={"amount": "$1,234.5", "awardee": {"ueiSAM": "ABCDEFGH1234", "name": "X"}},
            active="No",
            naicsCode="541512",
            naicsCodes=["236220"],
            fullParentPathName="DEPT OF DEFENSE. DEPT OF THE ARMY..W6QK",
            resourceLinks=["https://x/1.pdf", None, ""],
        )
    ).columns
    assert row["award_amount"] == Decimal("1234.50") and row["awardee_uei"] == "ABCDEFGH1234"
    assert row["active"] is False
    assert row["naics_code"] == "541512" and row["naics_codes"] == ["541512", "236220"]
    assert row["agency_names"] == ["DEPT OF DEFENSE", "DEPT OF THE ARMY", "W6QK"]
    assert row["department"] == "DEPT OF DEFENSE" and row["resource_links"] == ["https://x/1.pdf"]


def test_the_hash_ignores_key_order_and_sees_any_change() -> None:
    assert payload_hash({"a": 1, "b": [1, 2]}) == payload_hash({"b": [1, 2], "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})
    row = opportunity_row(record(title="t"))
    assert row.payload_hash == payload_hash(record(title="t"))


def test_entities_need_a_uei() -> None:
    good = entity_row(
        {"entityRegistration": {"ueiSAM": "ABCDEFGH1234", "registrationExpirationDate": "2027-01-31"}}
    )
    assert good.columns["expiration_date"] == dt.date(2027, 1, 31)
    with pytest.raises(Rejected, match="ueiSAM"):
        entity_row({"entityRegistration": None})


def test_windows_cover_the_range_without_gaps_or_overlaps() -> None:
    parts = windows(dt.date(2026, 1, 1), dt.date(2026, 1, 20), 7)
    assert parts == [
        (dt.date(2026, 1, 1), dt.date(2026, 1, 7)),
        (dt.date(2026, 1, 8), dt.date(2026, 1, 14)),
        (dt.date(2026, 1, 15), dt.date(2026, 1, 20)),
    ]
    assert windows(dt.date(2026, 1, 1), dt.date(2026, 1, 1), 7) == [
        (dt.date(2026, 1, 1), dt.date(2026, 1, 1))
    ]


def test_sync_arguments_are_checked_at_the_call_site() -> None:
    spec = spec_for("sync_opportunities")
    assert spec.encode({"posted_from": "2026-01-01"}) == {
        "full": False,
        "posted_from": "2026-01-01",
        "posted_to": None,
    }
    with pytest.raises(InvalidJob, match="posted_to is before posted_from"):
        spec.encode({"posted_from": "2026-02-01", "posted_to": "2026-01-01"})
    with pytest.raises(InvalidJob, match="exclude"):
        spec.encode({"full": True, "posted_from": "2026-01-01"})
    with pytest.raises(InvalidJob, match="ueis"):
        spec_for("sync_entities").encode({"ueis": ["lowercase-uei"]})
