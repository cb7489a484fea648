"""Fan-out: one message per user, sent in pipelined batches with :func:`app.enqueue.many`.

The daily dispatcher is meant to run every hour (the scheduler that will run it, ``schedules/``, is a later
issue); each run picks the users for whom that hour is the reminder hour (09:00) in their own zone, so everyone
gets one reminder a day at 09:00 local, DST changes included (any UTC offset, whole or not, meets exactly one
tick in the local 09:00 hour). Re-running a dispatch is harmless: every message carries its email's idempotency
key.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

from sqlalchemy import ColumnElement, select

from app import correlation, enqueue
from app.db.models import User
from app.db.session import session_scope
from app.email.content.clock import zone

logger = logging.getLogger(__name__)

#: Messages per pipelined round trip to Redis.
BATCH_SIZE = 1000
#: Local hour at which users get their daily reminder.
REMINDER_HOUR = 9

#: The job(s) of one user: the email, or (weekly, with WEEKLY_SUMMARY_PDF) the PDF report and the email.
MakeJob = Callable[[int, str], enqueue.PreparedJob | list[enqueue.PreparedJob]]


def dispatch_daily_reminders(*, at: dt.datetime, batch_size: int = BATCH_SIZE) -> int:
    """Enqueue the reminder of every user whose local time at ``at`` (floored to the hour) is 09:xx."""
    hour = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    with session_scope() as session:
        names = session.scalars(select(User.timezone).where(*_reachable()).distinct()).all()
    due = due_zones(names, hour)
    if not due:
        logger.info("no reminders due", extra={"at": hour.isoformat()})
        return 0
    sent = _fan_out(
        [*_reachable(), User.timezone.in_(list(due))],
        lambda user_id, tz: enqueue.opportunity_reminder_job(user_id, due[tz]),
        batch_size=batch_size,
    )
    logger.info("reminders dispatched", extra={"at": hour.isoformat(), "zones": len(due), "messages": sent})
    return sent


def due_zones(names: Iterable[str], hour: dt.datetime) -> dict[str, dt.date]:
    """The zones among ``names`` where ``hour`` falls in the local reminder hour, with their local date."""
    return {
        name: local.date() for name in names if (local := hour.astimezone(zone(name))).hour == REMINDER_HOUR
    }


def dispatch_weekly_summaries(*, week: str, batch_size: int = BATCH_SIZE) -> int:
    """Enqueue the weekly summary of ISO ``week`` for every reachable user.

    With ``WEEKLY_SUMMARY_PDF`` each user's weekly-summary PDF is requested from the documents queue in the
    same batch, and the email attaches it (retried while the PDF is not written yet).
    """
    from app.settings import get_settings

    make: MakeJob = (
        (lambda user_id, _tz: enqueue.weekly_summary_with_report_jobs(user_id, week))
        if get_settings().weekly_summary_pdf
        else (lambda user_id, _tz: enqueue.weekly_summary_job(user_id, week))
    )
    sent = _fan_out(_reachable(), make, batch_size=batch_size)
    logger.info("weekly summaries dispatched", extra={"week": week, "messages": sent})
    return sent


def _flat(
    made: Iterable[enqueue.PreparedJob | list[enqueue.PreparedJob]],
) -> list[enqueue.PreparedJob]:
    return [job for item in made for job in (item if isinstance(item, list) else [item])]


def _reachable() -> list[ColumnElement[bool]]:
    """Users worth a message: active and with an address (opt-outs are decided, and recorded, per email)."""
    return [User.is_active.is_(True), User.email.is_not(None)]


def _fan_out(filters: list[ColumnElement[bool]], make: MakeJob, *, batch_size: int) -> int:
    """Page through matching users by id (keyset, so each page is an index range) and enqueue each page.

    Every message of one dispatch carries the same correlation id (the dispatcher job's, or one made for this
    dispatch), so the logs tie each email back to the run that sent it.
    """
    total, last_id = 0, 0
    with correlation.correlated(), session_scope() as session:
        while True:
            rows = session.execute(
                select(User.id, User.timezone)
                .where(*filters, User.id > last_id)
                .order_by(User.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return total
            enqueue.many(_flat(make(user_id, tz) for user_id, tz in rows))
            total += len(rows)
            last_id = rows[-1][0]
            if len(rows) < batch_size:
                return total
