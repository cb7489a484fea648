"""The reads the reminder and the weekly summary share: new matches, saved deadlines, the proposal pipeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from app.db.models import Opportunity, Proposal, SavedOpportunity, proposal_collaborators
from app.email.content.common import UserRecord

#: Most items of one list an email shows; the rest are a click away on the dashboard.
MAX_LISTED = 20


def _interest_filters(user: UserRecord) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    naics = [str(code) for code in user.naics_codes or () if code]
    set_asides = [str(code) for code in user.set_asides or () if code]
    if naics:
        filters.append(Opportunity.naics_code.in_(naics))
    if set_asides:
        filters.append(Opportunity.set_aside_code.in_(set_asides))
    for keyword in user.keywords or ():
        text = str(keyword).strip()
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            filters.append(Opportunity.title.ilike(f"%{escaped}%", escape="\\"))
    return filters


def new_matches(
    session: Session, user: UserRecord, *, since: dt.datetime, until: dt.datetime, limit: int = MAX_LISTED
) -> Sequence[Opportunity]:
    """Active notices first seen in ``(since, until]`` that match the user's NAICS codes, keywords or set-asides
    and are still open at ``until``."""
    filters = _interest_filters(user)
    if not filters:
        return []
    statement = (
        select(Opportunity)
        .where(
            Opportunity.active.is_(True),
            Opportunity.first_seen_at > since,
            Opportunity.first_seen_at <= until,
            or_(Opportunity.response_deadline.is_(None), Opportunity.response_deadline > until),
            or_(*filters),
        )
        .order_by(Opportunity.first_seen_at.desc(), Opportunity.notice_id)
        .limit(limit)
    )
    return session.scalars(statement).all()


def saved_deadlines(
    session: Session, user_id: int, *, start: dt.datetime, end: dt.datetime, limit: int = MAX_LISTED
) -> Sequence[Opportunity]:
    """The user's saved notices whose response deadline falls in ``[start, end)``, soonest first."""
    statement = (
        select(Opportunity)
        .join(SavedOpportunity, SavedOpportunity.notice_id == Opportunity.notice_id)
        .where(
            SavedOpportunity.user_id == user_id,
            Opportunity.response_deadline >= start,
            Opportunity.response_deadline < end,
        )
        .order_by(Opportunity.response_deadline, Opportunity.notice_id)
        .limit(limit)
    )
    return session.scalars(statement).all()


def proposal_pipeline(session: Session, user_id: int) -> Sequence[Proposal]:
    """Proposals the user owns or collaborates on, by due date (undated last)."""
    collaborating = select(proposal_collaborators.c.proposal_id).where(
        proposal_collaborators.c.user_id == user_id
    )
    statement = (
        select(Proposal)
        .where(or_(Proposal.owner_id == user_id, Proposal.id.in_(collaborating)))
        .order_by(Proposal.due_date.is_(None), Proposal.due_date, Proposal.id)
    )
    return session.scalars(statement).all()
