"""Test data of the email tests, written straight into the test's PostgreSQL schema."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from app.db.models import Opportunity, Proposal, SavedOpportunity, User
from app.db.session import session_scope

_numbers = itertools.count(1)


def add_user(**fields: Any) -> int:
    number = next(_numbers)
    values: dict[str, Any] = {
        "email": f"user{number}@example.com",
        "name": f"User {number}",
        "timezone": "UTC",
    }
    values.update(fields)
    with session_scope() as session:
        user = User(**values)
        session.add(user)
        session.flush()
        return user.id


def add_opportunity(**fields: Any) -> str:
    number = next(_numbers)
    values: dict[str, Any] = {
        "notice_id": f"N{number:06d}",
        "title": f"Notice {number}",
        "agency_path": "DEPT OF TESTS.SUB",
        "payload_hash": f"hash{number}",
        "active": True,
    }
    values.update(fields)
    with session_scope() as session:
        session.add(Opportunity(**values))
    return str(values["notice_id"])


def save(user_id: int, notice_id: str) -> None:
    with session_scope() as session:
        session.add(SavedOpportunity(user_id=user_id, notice_id=notice_id))


def add_proposal(owner_id: int, *, collaborators: tuple[int, ...] = (), **fields: Any) -> int:
    with session_scope() as session:
        proposal = Proposal(owner_id=owner_id, title=fields.pop("title", "Proposal"), **fields)
        proposal.collaborators = [session.get_one(User, uid) for uid in collaborators]
        session.add(proposal)
        session.flush()
        return proposal.id


def at(day: dt.date, hour: int = 12, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=tz)
