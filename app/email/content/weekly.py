"""The weekly summary of ISO week W, sent at its start: the matches first seen in the week before W, the saved
notices due during W, and the user's proposal pipeline now. Weeks are the user's local weeks."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy.orm import Session

from app.email import kinds
from app.email.content import queries
from app.email.content.clock import day_range, week_monday, zone
from app.email.content.common import UserRecord
from app.email.content.views import OpportunityView, ProposalView
from app.email.delivery import EmailJob
from app.email.recipients import Recipient
from app.jobs.email import weekly_key

#: Proposal statuses still in play (the pipeline lists these; the others are only counted).
OPEN_STATUSES = ("draft", "in_review")


def weekly_job(
    session: Session, user: UserRecord, *, week: str, attachments: tuple[str, ...] = ()
) -> EmailJob:
    user_id = user.id
    recipient = Recipient.of(user)
    tz = zone(recipient.timezone)
    monday = week_monday(week)
    last_week_start, week_start = day_range(monday - dt.timedelta(days=7), 7, tz)
    _, week_end = day_range(monday, 7, tz)
    matches = queries.new_matches(session, user, since=last_week_start, until=week_start)
    deadlines = queries.saved_deadlines(session, user_id, start=week_start, end=week_end)
    pipeline = [ProposalView.of(p) for p in queries.proposal_pipeline(session, user_id)]
    counts = Counter(p.status for p in pipeline)
    return EmailJob(
        kind=kinds.WEEKLY,
        key=weekly_key(user_id, week),
        recipient=recipient,
        context={
            "week": week,
            "monday": monday,
            "matches": [OpportunityView.of(o, tz) for o in matches],
            "deadlines": [OpportunityView.of(o, tz) for o in deadlines],
            "open_proposals": [p for p in pipeline if p.status in OPEN_STATUSES],
            "status_counts": sorted(counts.items()),
            "attachment_names": [path.rsplit("/", 1)[-1] for path in attachments],
        },
        attachments=attachments,
    )
