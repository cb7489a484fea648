"""Entities (awardees and tracked UEIs, ten per request, upserted by UEI) and the analytics rebuild."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.db.models import AnalyticsCount, AnalyticsDeadline, Entity, Opportunity, SyncRun, TrackedEntity, User
from app.db.session import session_scope, transaction
from app.sync.analytics import refresh_analytics
from app.sync.entities import sync_entities, wanted_ueis
from app.sync.upsert import upsert_opportunities
from app.testing.samgov_server import SamGovSimulator
from tests.integration.sync.records import opportunity
from tests.support.samgov import samgov_client

pytestmark = pytest.mark.integration


def test_awardees_and_tracked_entities_are_paged_ten_at_a_time_and_upserted(
    sync_env: dict[str, str], simulator: SamGovSimulator
) -> None:
    # Given notices awarded to 12 known entities, and a user tracking 3 more
    data = simulator.dataset
    awardees = [data.uei(i) for i in range(12)]
    tracked = [data.uei(i) for i in range(12, 15)]
    records = [
        opportunity(n, award={"amount": "10.00", "awardee": {"name": "x", "ueiSAM": uei}})
        for n, uei in enumerate(awardees)
    ]
    with transaction() as connection:
        upsert_opportunities(connection, records)
    with session_scope() as session:
        user = User(email="u@example.com")
        session.add(user)
        session.flush()
        session.add_all(TrackedEntity(user_id=user.id, uei=uei) for uei in tracked)
    assert wanted_ueis() == sorted(awardees + tracked)

    # When entities are synced (scheduled: no UEIs given)
    with samgov_client(simulator) as client:
        run_id = sync_entities(client=client)

    # Then two requests (10 + 5 UEIs) stored 15 entities with their registration status and expiry
    assert [len(r.params["ueiSAM"].split("~")) for r in simulator.requests] == [10, 5]
    with session_scope() as session:
        stored = {e.uei: e for e in session.scalars(select(Entity))}
        run = session.get(SyncRun, run_id)
    assert sorted(stored) == sorted(awardees + tracked)
    sample = data.entity(3)["entityRegistration"]
    entity = stored[data.uei(3)]
    assert entity.registration_status == sample["registrationStatus"]
    assert entity.expiration_date == dt.date.fromisoformat(sample["registrationExpirationDate"])
    assert entity.primary_naics is not None
    assert run is not None and (run.status, run.inserted, run.pages) == ("succeeded", 15, 2)

    # When they are synced again: nothing is written
    with samgov_client(simulator) as client:
        again = sync_entities(ueis=tracked, client=client)
    with session_scope() as session:
        second = session.get(SyncRun, again)
    assert second is not None and (second.inserted, second.updated, second.unchanged) == (0, 0, 3)


def test_analytics_are_rebuilt_whole(sync_env: dict[str, str]) -> None:
    now = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    with transaction() as connection:
        upsert_opportunities(
            connection, [opportunity(n, posted=dt.date(2026, 11, 2 + n % 3)) for n in range(30)]
        )
    refresh_analytics(now=now)

    # When a notice disappears and the aggregates are rebuilt
    with session_scope() as session:
        session.delete(session.get(Opportunity, opportunity(0)["noticeId"]))
    written = refresh_analytics(now=now)

    with session_scope() as session:
        counts = {(c.dimension, c.key): c for c in session.scalars(select(AnalyticsCount))}
        deadlines = session.scalar(select(func.count()).select_from(AnalyticsDeadline))
        expected_deadlines = session.scalar(
            select(func.count()).where(
                Opportunity.active.is_(True),
                Opportunity.response_deadline >= now,
                Opportunity.response_deadline < now + dt.timedelta(days=30),
            )
        )
    # Then every dimension adds up to the 29 notices left, and the award totals to theirs
    for dimension in ("naics", "agency", "set_aside", "week"):
        assert sum(c.notices for (d, _), c in counts.items() if d == dimension) == 29, dimension
    awarded = [n for n in range(1, 30) if n % 3 == 0]
    assert counts[("naics", "541512")].award_count == len(awarded)
    assert counts[("naics", "541512")].award_total == sum(Decimal(f"{1000 + n}.50") for n in awarded)
    assert counts[("week", "2026-W45")].notices == 29
    assert counts[("agency", "DEPT OF DEFENSE")].notices == 15
    assert deadlines == expected_deadlines == written["deadlines"] > 0


def test_the_aggregates_stay_readable_during_a_rebuild_and_rebuilds_queue(sync_env: dict[str, str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text

    from app.db.session import get_engine

    with transaction() as connection:
        upsert_opportunities(connection, [opportunity(n) for n in range(20)])
    refresh_analytics()

    # Given a rebuild in progress (its lock taken and the old rows deleted, not committed yet)
    with get_engine().connect() as writer, get_engine().connect() as reader:
        writer.execute(text("LOCK TABLE analytics_counts, analytics_deadlines IN EXCLUSIVE MODE"))
        writer.execute(text("DELETE FROM analytics_counts"))
        # Then a reader sees the previous aggregates at once (it would time out if the lock blocked it)
        reader.execute(text("SET statement_timeout = '2s'"))
        seen = reader.execute(
            text("SELECT sum(notices) FROM analytics_counts WHERE dimension = 'naics'")
        ).scalar()
        assert seen == 20
        writer.rollback()
        reader.rollback()

    # And rebuilds started together queue instead of colliding on the primary key
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: refresh_analytics(), range(4)))
    assert all(r["naics"] == 3 for r in results)
