"""The daily reminder: saved notices due today and in the next ``REMINDER_WINDOW_DAYS`` days, plus new notices
matching the user's interests since their last reminder. Nothing to say means no email (skipped)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from app.db.models import User
from app.db.types import utcnow
from app.email import kinds
from app.email.content import queries
from app.email.content.clock import day_range, zone
from app.email.content.common import UserRecord
from app.email.content.views import OpportunityView
from app.email.delivery import EmailJob
from app.email.recipients import Recipient
from app.jobs.email import reminder_key
from app.settings import get_settings

NOTHING_TO_REPORT = "nothing_to_report"
#: How far back a user's first reminder looks for new matches.
FIRST_LOOKBACK = dt.timedelta(days=1)


def reminder_job(
    session: Session, user: UserRecord, *, on: dt.date, now: dt.datetime | None = None
) -> EmailJob:
    user_id = user.id
    recipient = Recipient.of(user)
    tz = zone(recipient.timezone)
    as_of = now or utcnow()
    window_days = get_settings().reminder_window_days
    start, end = day_range(on, window_days + 1, tz)
    deadlines = queries.saved_deadlines(session, user_id, start=start, end=end)
    since = user.last_reminder_at or as_of - FIRST_LOOKBACK
    matches = queries.new_matches(session, user, since=since, until=as_of)
    return EmailJob(
        kind=kinds.REMINDER,
        key=reminder_key(user_id, on),
        recipient=recipient,
        context={
            "on": on,
            "window_days": window_days,
            "deadlines": [OpportunityView.of(o, tz) for o in deadlines],
            "matches": [OpportunityView.of(o, tz) for o in matches],
        },
        skip_reason=None if deadlines or matches else NOTHING_TO_REPORT,
        on_sent=lambda s: _advance_last_reminder(s, user_id, as_of),
    )


def _advance_last_reminder(session: Session, user_id: int, as_of: dt.datetime) -> None:
    """Move the user's last-reminder time forward (never back: a late retry of an old day must not rewind it)."""
    session.execute(
        update(User)
        .where(User.id == user_id, or_(User.last_reminder_at.is_(None), User.last_reminder_at < as_of))
        .values(last_reminder_at=as_of)
    )
