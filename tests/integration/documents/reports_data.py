"""Test data of the report and export tests: one user with proposals, saved and matching notices, entities.

Some values are hostile on purpose: markup in titles (must be escaped in PDFs), formula-looking text (must be
neutralised in CSV and kept as text in XLSX), non-ASCII names (must round-trip).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from app.db.models import Entity, Opportunity, Proposal, SavedOpportunity, User
from app.db.session import session_scope

NOW = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)
MARKUP_TITLE = "<b>Bold</b> & <script>alert('x')</script> Cyber Support"
FORMULA_TITLE = "=cmd|' /C calc'!A0"
UNICODE_NAME = "Zoë Ólafsdóttir-Nguyễn"


@dataclass(frozen=True)
class Seeded:
    user_id: int
    other_user_id: int
    notice_ids: list[str]
    proposal_titles: list[str]


def seed_reports(*, proposals: int = 12, opportunities: int = 10) -> Seeded:
    with session_scope() as session:
        user = User(
            email="zoe@example.com",
            name=UNICODE_NAME,
            timezone="America/New_York",
            naics_codes=["541512"],
            keywords=["cyber"],
            set_asides=["SBA"],
        )
        other = User(email="other@example.com", name="Other User")
        session.add_all([user, other])
        session.flush()
        notices = []
        for index in range(opportunities):
            title = {0: MARKUP_TITLE, 1: FORMULA_TITLE}.get(index, f"Cloud migration services lot {index}")
            notice_id = f"{index:032x}"
            session.add(
                Opportunity(
                    notice_id=notice_id,
                    title=title,
                    agency_path=f"DEPT OF TESTS {index % 3}.OFFICE",
                    posted_date=(NOW - dt.timedelta(days=3 + index)).date(),
                    response_deadline=NOW + dt.timedelta(days=2 + index),
                    set_aside_code="SBA" if index % 2 else "8A",
                    naics_code="541512" if index % 3 else "541330",
                    award_amount=Decimal("1250000.50") + index,
                    payload_hash=f"h{index}",
                    active=True,
                    first_seen_at=NOW - dt.timedelta(days=1 + index),
                )
            )
            notices.append(notice_id)
        session.flush()
        for notice_id in notices[:6]:
            session.add(SavedOpportunity(user_id=user.id, notice_id=notice_id, saved_at=NOW))
        titles = []
        statuses = ("draft", "in_review", "submitted", "won", "lost")
        for index in range(proposals):
            title = f"Proposal {index:04d} for {UNICODE_NAME}" if index else "Proposal <i>zero</i> & more"
            titles.append(title)
            session.add(
                Proposal(
                    owner_id=user.id,
                    title=title,
                    status=statuses[index % len(statuses)],
                    due_date=(NOW + dt.timedelta(days=index)).date(),
                    notice_id=notices[index % len(notices)] if notices else None,
                )
            )
        session.add(Proposal(owner_id=other.id, title="Not yours", status="draft"))
        session.add(Entity(uei="ABCDEFGH1234", legal_business_name="Évora Systems Corp.", payload_hash="e1"))
        session.flush()
        return Seeded(user.id, other.id, notices, titles)


def seed_opportunities(count: int, *, batch: int = 5000) -> None:
    """Plain notices up to ``count`` of them (numbered from 0, those already there kept), bulk-inserted (the
    large-export tests and the benchmark)."""
    from sqlalchemy import func, insert, select

    rows = []
    with session_scope() as session:
        have = session.scalar(select(func.count()).where(Opportunity.notice_id.like("bulk%"))) or 0
        for index in range(have, count):
            rows.append(
                {
                    "notice_id": f"bulk{index:028d}",
                    "title": f"Bulk notice {index} — Ångström services",
                    "agency_path": "DEPT OF BULK.OFFICE",
                    "posted_date": dt.date(2026, 1, 1) + dt.timedelta(days=index % 300),
                    "response_deadline": NOW + dt.timedelta(hours=index % 5000),
                    "set_aside_code": "SBA",
                    "naics_code": "541512",
                    "award_amount": Decimal(index) + Decimal("0.25"),
                    "payload_hash": "h",
                    "active": True,
                    "raw": {},
                    "naics_codes": [],
                }
            )
            if len(rows) >= batch:
                session.execute(insert(Opportunity), rows)
                rows = []
        if rows:
            session.execute(insert(Opportunity), rows)
