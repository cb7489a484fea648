"""The email queue's service functions: what each actor calls, keyword-only, testable without a broker.

Each one reads what it needs in a short transaction, then hands the email(s) to :func:`deliver`, which makes
them exactly-once through ``email_log``. Errors propagate for the retry policy (:mod:`app.errors`).
"""

from __future__ import annotations

import datetime as dt

from app.db.session import session_scope
from app.email import kinds
from app.email.content.proposal import proposal_jobs
from app.email.content.reminder import reminder_job
from app.email.content.weekly import weekly_job
from app.email.content.welcome import welcome_job
from app.email.delivery import EmailJob, Outcome, deliver_each, deliver_for_user
from app.email.dispatch import dispatch_daily_reminders, dispatch_weekly_summaries
from app.email.recipients import Recipient
from app.jobs.email import reminder_key, weekly_key, welcome_key

__all__ = [
    "dispatch_daily_reminders",
    "dispatch_weekly_summaries",
    "send_admin_alert",
    "send_opportunity_reminder",
    "send_proposal_notification",
    "send_weekly_summary",
    "send_welcome_email",
]


def send_welcome_email(*, user_id: int) -> Outcome:
    return deliver_for_user(welcome_key(user_id), user_id, welcome_job)


def send_opportunity_reminder(*, user_id: int, on: dt.date) -> Outcome:
    return deliver_for_user(
        reminder_key(user_id, on),
        user_id,
        lambda session, user: reminder_job(session, user, on=on),
    )


def send_proposal_notification(*, proposal_id: int, event: str, status: str | None = None) -> list[Outcome]:
    with session_scope() as session:
        jobs = proposal_jobs(session, proposal_id=proposal_id, event=event, status=status)
    return deliver_each(jobs)


def send_weekly_summary(*, user_id: int, week: str, attachments: tuple[str, ...] = ()) -> Outcome:
    return deliver_for_user(
        weekly_key(user_id, week),
        user_id,
        lambda session, user: weekly_job(session, user, week=week, attachments=attachments),
    )


def send_admin_alert(*, key: str, subject: str, text: str) -> list[Outcome]:
    """The alert to each address of ADMIN_EMAILS, once per address (``<key>:<address>`` in ``email_log``)."""
    from app.settings import get_settings

    jobs = [
        EmailJob(
            kind=kinds.ADMIN_ALERT,
            key=f"{key}:{address}",
            # Not a user: user id 0 marks an operator address in email_log.
            recipient=Recipient(0, address, "", "UTC", True, frozenset()),
            context={"subject": subject, "text": text},
        )
        for address in get_settings().admin_email_list
    ]
    return deliver_each(jobs)
