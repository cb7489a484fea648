"""Actors of the ``email`` queue: each validates its arguments (``job_actor``) and calls one service function."""

from __future__ import annotations

import app.broker  # noqa: F401  (binds actors to the platform broker before any is declared)
from app.actor import job_actor
from app.email import service
from app.jobs.email import (
    AdminAlertArgs,
    DispatchDailyRemindersArgs,
    DispatchWeeklySummariesArgs,
    OpportunityReminderArgs,
    ProposalNotificationArgs,
    WeeklySummaryArgs,
    WelcomeEmailArgs,
)


@job_actor("send_welcome_email")
def send_welcome_email(args: WelcomeEmailArgs) -> None:
    service.send_welcome_email(user_id=args.user_id)


@job_actor("send_opportunity_reminder")
def send_opportunity_reminder(args: OpportunityReminderArgs) -> None:
    service.send_opportunity_reminder(user_id=args.user_id, on=args.on)


@job_actor("send_proposal_notification")
def send_proposal_notification(args: ProposalNotificationArgs) -> None:
    service.send_proposal_notification(proposal_id=args.proposal_id, event=args.event, status=args.status)


@job_actor("send_weekly_summary")
def send_weekly_summary(args: WeeklySummaryArgs) -> None:
    service.send_weekly_summary(user_id=args.user_id, week=args.week, attachments=args.attachments)


@job_actor("dispatch_daily_reminders")
def dispatch_daily_reminders(args: DispatchDailyRemindersArgs) -> None:
    service.dispatch_daily_reminders(at=args.at)


@job_actor("dispatch_weekly_summaries")
def dispatch_weekly_summaries(args: DispatchWeeklySummariesArgs) -> None:
    service.dispatch_weekly_summaries(week=args.week)


@job_actor("send_admin_alert")
def send_admin_alert(args: AdminAlertArgs) -> None:
    service.send_admin_alert(key=args.key, subject=args.subject, text=args.text)
