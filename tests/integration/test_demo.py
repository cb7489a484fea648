"""``app.demo.seed`` on PostgreSQL: counts, determinism, valid values, seeding twice, bulk statements."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.db.models import Entity, Opportunity, Proposal, SavedOpportunity, User, proposal_collaborators
from app.db.session import get_engine, session_scope
from app.demo import NAICS, SET_ASIDES, payload_hash, seed

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


def _count(session: Session, model: object) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def test_seed_inserts_what_the_summary_reports(platform_env: dict[str, str]) -> None:
    with session_scope() as session:
        summary = seed(session, users=200, seed=7, now=NOW)

    assert summary.users == 200
    assert str(summary).startswith("users=200 opportunities=100 ")
    assert summary.opportunities == 100
    assert summary.entities == 10
    assert summary.saved_opportunities > 200
    assert summary.proposals > 20
    assert summary.proposal_collaborators > 0
    with session_scope() as session:
        assert _count(session, User) == 200
        assert _count(session, Opportunity) == summary.opportunities
        assert _count(session, SavedOpportunity) == summary.saved_opportunities
        assert _count(session, Proposal) == summary.proposals
        assert _count(session, proposal_collaborators) == summary.proposal_collaborators
        assert _count(session, Entity) == summary.entities


def test_values_are_realistic(platform_env: dict[str, str]) -> None:
    with session_scope() as session:
        seed(session, users=300, seed=1, now=NOW)

    with session_scope() as session:
        users = list(session.scalars(select(User)))
        opportunities = list(session.scalars(select(Opportunity)))
        proposals = list(session.scalars(select(Proposal)))
        entities = list(session.scalars(select(Entity)))

    zones = {u.timezone for u in users}
    for zone in zones:
        ZoneInfo(zone)  # raises for an unknown zone
    assert len({z for z in zones if z.startswith("America/")}) >= 5
    assert any(not z.startswith(("America/", "Pacific/")) for z in zones)
    assert len({u.email for u in users}) == len(users)
    assert all(re.fullmatch(r"[a-z0-9.]+@example\.(com|org)", u.email or "") for u in users)
    assert any(not u.name.isascii() for u in users)
    assert any(not u.is_active for u in users) and sum(u.is_active for u in users) > 250
    assert any(u.email_opt_outs for u in users)
    assert all(set(u.naics_codes) <= set(NAICS) and u.naics_codes for u in users)
    assert {s for u in users for s in u.set_asides} <= set(SET_ASIDES)

    for opp in opportunities:
        assert re.fullmatch(r"[0-9a-f]{32}", opp.notice_id)
        assert opp.raw["noticeId"] == opp.notice_id
        assert opp.payload_hash == payload_hash(opp.raw)
        assert opp.agency_path and opp.agency_path.count(".") >= 1
        assert opp.posted_date is not None and 0 <= (NOW.date() - opp.posted_date).days <= 60
        if opp.response_deadline is not None:
            assert 2 <= (opp.response_deadline.date() - NOW.date()).days <= 46
            assert dt.datetime.fromisoformat(opp.raw["responseDeadLine"]) == opp.response_deadline
    assert any(o.response_deadline is None for o in opportunities)
    assert any(o.set_aside_code for o in opportunities)
    assert {p.status for p in proposals} == {"draft", "in_review", "submitted", "won", "lost"}
    assert all(p.due_date is not None for p in proposals)
    assert all(re.fullmatch(r"[A-Z0-9]{12}", e.uei) and len(e.cage_code or "") == 5 for e in entities)


def _snapshot(session: Session) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    users = session.execute(select(User.name, User.timezone, User.naics_codes).order_by(User.id)).all()
    opps = session.execute(
        select(Opportunity.notice_id, Opportunity.title, Opportunity.payload_hash).order_by(
            Opportunity.notice_id
        )
    ).all()
    return [tuple(u) for u in users], [tuple(o) for o in opps]


def test_same_seed_same_data_and_seeding_twice_adds_users(platform_env: dict[str, str]) -> None:
    # Given a database seeded once
    with session_scope() as session:
        first = seed(session, users=50, seed=3, now=NOW)
    with session_scope() as session:
        users_before, opps_before = _snapshot(session)

    # When the same seed runs again
    with session_scope() as session:
        second = seed(session, users=50, seed=3, now=NOW)

    # Then the same people are generated again under fresh emails, and the notices are kept, not duplicated
    assert second.users == 50
    assert second.opportunities == 0 and second.skipped_opportunities == first.opportunities
    assert second.entities == 0 and second.skipped_entities == first.entities
    with session_scope() as session:
        users_after, opps_after = _snapshot(session)
        emails = list(session.scalars(select(User.email)))
    assert users_after[50:] == users_before
    assert opps_after == opps_before
    assert len(set(emails)) == 100


def test_different_seeds_differ(platform_env: dict[str, str]) -> None:
    with session_scope() as session:
        seed(session, users=20, seed=1, now=NOW)
        seed(session, users=20, seed=2, now=NOW)
    with session_scope() as session:
        assert _count(session, Opportunity) == 40  # no notice id shared between the two seeds


def test_a_thousand_users_are_seeded_in_bulk(platform_env: dict[str, str]) -> None:
    """Speed is a benchmark's business; what keeps seeding fast is testable: rows go in by the batch, not one
    statement per user (about 300 statements for 1,000 users and their opportunities, proposals, saves)."""
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope() as session:
            summary = seed(session, users=1000)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert summary.users == 1000
    with session_scope() as session:
        assert _count(session, User) == 1000
    assert 0 < len(statements) < 1000, f"{len(statements)} statements for 1,000 users"
