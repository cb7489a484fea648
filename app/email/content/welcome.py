"""The welcome email: sent once per user, pointing at the dashboard and at setting up interests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.email import kinds, links
from app.email.content.common import UserRecord
from app.email.delivery import EmailJob
from app.email.recipients import Recipient
from app.jobs.email import welcome_key


def welcome_job(session: Session, user: UserRecord) -> EmailJob:
    return EmailJob(
        kind=kinds.WELCOME,
        key=welcome_key(user.id),
        recipient=Recipient.of(user),
        context={
            "has_interests": bool(user.naics_codes or user.keywords or user.set_asides),
            "saved_url": links.saved_opportunities(),
        },
    )
