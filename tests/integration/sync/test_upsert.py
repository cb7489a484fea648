"""The page upsert on real PostgreSQL: each notice once, unchanged pages write nothing, malformed records aside."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.db.models import Opportunity, SyncRejectedRecord
from app.db.session import session_scope, transaction
from app.sync.upsert import upsert_opportunities
from tests.integration.sync.records import notice_id, opportunity

pytestmark = pytest.mark.integration


def test_new_changed_and_unchanged_records_are_counted_and_stored_once(platform_env: dict[str, str]) -> None:
    # Given a first page stored
    page = [opportunity(n) for n in range(50)]
    with transaction() as connection:
        first = upsert_opportunities(connection, page)
    assert (first.inserted, first.updated, first.unchanged) == (50, 0, 0)

    # When the same page comes again with one notice amended and one repeated inside the page
    again = [opportunity(n) for n in range(50)]
    again[7] = opportunity(7, title="Notice 7 (amended)")
    again.append(opportunity(3))
    with session_scope() as session:
        before = session.scalar(select(Opportunity.updated_at).where(Opportunity.notice_id == notice_id(8)))
    with transaction() as connection:
        second = upsert_opportunities(connection, again)

    # Then one row is updated, nothing else is written
    assert (second.fetched, second.inserted, second.updated, second.unchanged) == (51, 0, 1, 50)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Opportunity)) == 50
        amended = session.get(Opportunity, notice_id(7))
        assert amended is not None and amended.title == "Notice 7 (amended)"
        untouched = session.scalar(
            select(Opportunity.updated_at).where(Opportunity.notice_id == notice_id(8))
        )
        assert untouched == before


def test_normalized_columns(platform_env: dict[str, str]) -> None:
    with transaction() as connection:
        upsert_opportunities(connection, [opportunity(3), opportunity(4), opportunity(7)])
    with session_scope() as session:
        awarded = session.get(Opportunity, notice_id(3))
        set_aside = session.get(Opportunity, notice_id(4))
        inactive = session.get(Opportunity, notice_id(7))
        assert awarded is not None and set_aside is not None and inactive is not None
        assert awarded.award_amount == Decimal("1003.50")
        assert awarded.response_deadline == dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.UTC)
        assert awarded.agency_names == ["DEPT OF DEFENSE", "DEPT OF THE ARMY", "W6QK ACC-APG"]
        assert awarded.department == "DEPT OF DEFENSE"
        assert awarded.naics_codes == ["541512"]
        assert awarded.awardee_uei == "UEI000000003"
        assert set_aside.set_aside_code == "SBA" and set_aside.resource_links == [
            "https://sam.gov/files/4.pdf"
        ]
        assert awarded.active is True and inactive.active is False
        assert awarded.raw["pointOfContact"] == [{"email": "co@example.gov"}]


def test_malformed_records_are_kept_aside_without_failing_the_page(platform_env: dict[str, str]) -> None:
    page = [
        opportunity(1),
        opportunity(2, noticeId="not-an-id"),
        opportunity(3, responseDeadLine="next tuesday"),
        opportunity(6, award={"amount": "lots", "awardee": None}),
        "not an object",
        opportunity(5),
    ]
    with transaction() as connection:
        counts = upsert_opportunities(connection, page)

    assert (counts.inserted, counts.invalid) == (2, 4)
    with session_scope() as session:
        reasons = session.scalars(select(SyncRejectedRecord.reason).order_by(SyncRejectedRecord.id)).all()
    assert len(reasons) == 4
    for field in ("noticeId", "not an object", "responseDeadLine", "award.amount"):
        assert sum(field in reason for reason in reasons) == 1, (field, reasons)
