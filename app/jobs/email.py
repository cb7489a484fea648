"""Argument schemas of the ``email`` queue's actors, and the idempotency keys of the emails they send.

The keys live here, next to the schemas, because both sides need them: the enqueue helpers put them on messages
(the Redis-side duplicate filter) and the email service claims them in ``email_log`` (the durable one). This
module stays import-light so that the web app can use it without loading the email code.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PositiveInt

from app.constants import EMAIL_QUEUE
from app.jobs.spec import JobArgs, JobSpec

ProposalEvent = Literal["created", "submitted", "status_changed", "deadline_approaching"]


def _iso_week(value: str) -> str:
    try:
        dt.date.fromisoformat(f"{value}-1")
    except ValueError as err:
        raise ValueError("must be an ISO week such as 2026-W48") from err
    return value


IsoWeek = Annotated[str, Field(pattern=r"^\d{4}-W\d{2}$"), AfterValidator(_iso_week)]


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone")
    return value


def _relative_path(value: str) -> str:
    if not value or value.startswith("/") or ".." in value.split("/") or "\0" in value:
        raise ValueError("must be a relative path under STORAGE_DIR")
    return value


AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]


class WelcomeEmailArgs(JobArgs):
    user_id: PositiveInt


class OpportunityReminderArgs(JobArgs):
    user_id: PositiveInt
    on: dt.date


class ProposalNotificationArgs(JobArgs):
    proposal_id: PositiveInt
    event: ProposalEvent
    #: For ``status_changed``: the new status, so that each change is its own email (default: the current one).
    status: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")] | None = None


class WeeklySummaryArgs(JobArgs):
    user_id: PositiveInt
    week: IsoWeek
    #: Files under STORAGE_DIR to attach (the weekly PDF report); relative paths only.
    attachments: tuple[Annotated[str, Field(max_length=500), AfterValidator(_relative_path)], ...] = ()


class DispatchDailyRemindersArgs(JobArgs):
    at: AwareDatetime


class DispatchWeeklySummariesArgs(JobArgs):
    week: IsoWeek


class AdminAlertArgs(JobArgs):
    """An operational alert to every address of ADMIN_EMAILS; ``key`` makes it once per address."""

    key: Annotated[str, Field(min_length=1, max_length=200)]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    text: Annotated[str, Field(max_length=10_000)]


def welcome_key(user_id: int) -> str:
    """``welcome:42``: one welcome email per user, ever."""
    return f"welcome:{user_id}"


def reminder_key(user_id: int, on: dt.date) -> str:
    """``reminder:42:2026-11-23``: one reminder per user per local day."""
    return f"reminder:{user_id}:{on.isoformat()}"


def proposal_key(proposal_id: int, event: str, recipient_id: int, occurrence: str | None = None) -> str:
    """``proposal:17:submitted:42``: one email per proposal event and recipient.

    Events that can happen more than once for a proposal (a status change, a moved due date) carry what makes
    this occurrence distinct: ``proposal:17:status_changed:in_review:42``.
    """
    middle = f"{event}:{occurrence}" if occurrence else event
    return f"proposal:{proposal_id}:{middle}:{recipient_id}"


def weekly_key(user_id: int, week: str) -> str:
    """``weekly:42:2026-W48``: one summary per user per ISO week."""
    return f"weekly:{user_id}:{week}"


EMAIL_JOBS = (
    JobSpec("send_welcome_email", EMAIL_QUEUE, WelcomeEmailArgs, time_limit_ms=60_000, claims_own_key=True),
    JobSpec(
        "send_opportunity_reminder",
        EMAIL_QUEUE,
        OpportunityReminderArgs,
        time_limit_ms=60_000,
        claims_own_key=True,
    ),
    JobSpec("send_proposal_notification", EMAIL_QUEUE, ProposalNotificationArgs, time_limit_ms=60_000),
    JobSpec(
        "send_weekly_summary", EMAIL_QUEUE, WeeklySummaryArgs, time_limit_ms=120_000, claims_own_key=True
    ),
    JobSpec("dispatch_daily_reminders", EMAIL_QUEUE, DispatchDailyRemindersArgs, time_limit_ms=30 * 60_000),
    JobSpec("dispatch_weekly_summaries", EMAIL_QUEUE, DispatchWeeklySummariesArgs, time_limit_ms=30 * 60_000),
    JobSpec("send_admin_alert", EMAIL_QUEUE, AdminAlertArgs, time_limit_ms=60_000),
)
