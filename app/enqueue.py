"""The enqueue helpers the web app imports: ``from app import enqueue``.

Every helper validates its arguments against the job catalogue (:mod:`app.jobs`) and raises
:class:`~app.errors.InvalidJob` at the call site, so a bad job never reaches a queue. Messages are built by
actor and queue *name*; nothing here imports ``actors/``, WeasyPrint, or the email and sync code.

Common options of every helper:

- ``delay``: seconds (int/float) or a ``timedelta``; at most 7 days.
- ``idempotency_key``: a finished job with the same key is not run again (and emails are claimed by it).
- ``correlation_id``: defaults to the current one (:mod:`app.correlation`), else a new id.
- ``session``: a SQLAlchemy session; the job is written to the outbox in the caller's transaction and published
  by the relay after commit, so a rolled-back transaction sends nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dramatiq import Message
from sqlalchemy.orm import Session

from app import correlation
from app.errors import InvalidJob
from app.jobs import JobSpec, spec_for

#: The longest delay a message may carry (Dramatiq's Redis broker keeps delayed messages in memory).
MAX_DELAY = dt.timedelta(days=7)
MAX_IDEMPOTENCY_KEY = 256
MAX_CORRELATION_ID = 64


@dataclass(frozen=True)
class JobRef:
    """What the caller keeps of a sent job: enough to find it in the admin and in ``job_runs``."""

    message_id: str
    queue: str
    actor: str


@dataclass(frozen=True)
class PreparedJob:
    """A validated message not sent yet; :func:`many` sends a list of them in one round trip."""

    message: Message[Any]
    delay_ms: int | None

    @property
    def ref(self) -> JobRef:
        return JobRef(self.message.message_id, self.message.queue_name, self.message.actor_name)


def job(
    actor: str,
    /,
    *,
    delay: float | dt.timedelta | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    **kwargs: Any,
) -> PreparedJob:
    """Validate and build the message of ``actor`` without sending it."""
    spec = spec_for(actor)
    return PreparedJob(
        message=Message(
            queue_name=spec.queue,
            actor_name=spec.actor,
            args=(),
            kwargs=spec.encode(kwargs),
            options=_options(spec, idempotency_key, correlation_id),
        ),
        delay_ms=_delay_ms(delay),
    )


def send(
    actor: str,
    /,
    *,
    delay: float | dt.timedelta | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    session: Session | None = None,
    **kwargs: Any,
) -> JobRef:
    """Validate and send one job of ``actor`` (any actor of the catalogue) by name."""
    prepared = job(
        actor, delay=delay, idempotency_key=idempotency_key, correlation_id=correlation_id, **kwargs
    )
    return many([prepared], session=session)[0]


def many(jobs: Iterable[PreparedJob], *, session: Session | None = None) -> list[JobRef]:
    """Send prepared jobs in one pipelined round trip (or one outbox insert when ``session`` is given)."""
    batch = list(jobs)
    if not batch:
        return []
    if session is not None:
        from app.outbox import stage

        stage(session, [(p.message, p.delay_ms) for p in batch])
    else:
        from app.transport.publish import publish

        publish([(p.message, p.delay_ms) for p in batch])
    return [p.ref for p in batch]


def _options(spec: JobSpec, idempotency_key: str | None, correlation_id: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise InvalidJob(f"idempotency_key for {spec.actor} must be a string of 1..{MAX_IDEMPOTENCY_KEY}")
        options["idempotency_key"] = idempotency_key
    chosen = correlation_id or correlation.current() or correlation.new_id()
    if not isinstance(chosen, str) or len(chosen) > MAX_CORRELATION_ID:
        raise InvalidJob(f"correlation_id must be a string of at most {MAX_CORRELATION_ID} characters")
    options["correlation_id"] = chosen
    return options


def _delay_ms(delay: float | dt.timedelta | None) -> int | None:
    if delay is None:
        return None
    if isinstance(delay, bool) or not isinstance(delay, int | float | dt.timedelta):
        raise InvalidJob("delay must be seconds (a number) or a timedelta")
    seconds = delay.total_seconds() if isinstance(delay, dt.timedelta) else float(delay)
    if not 0 <= seconds <= MAX_DELAY.total_seconds():
        raise InvalidJob(f"delay must be between 0 and {MAX_DELAY.days} days")
    return int(seconds * 1000)


# ------------------------------------------------------------------------------------------- email queue


def welcome_email(user_id: int, **options: Any) -> JobRef:
    """Send the welcome email once per user (key ``welcome:<user_id>``)."""
    from app.jobs.email import welcome_key

    options.setdefault("idempotency_key", welcome_key(user_id))
    return send("send_welcome_email", user_id=user_id, **options)


def opportunity_reminder_job(user_id: int, on: dt.date, **options: Any) -> PreparedJob:
    """The reminder of ``user_id`` for the local day ``on``, prepared for :func:`many` (the dispatcher's unit)."""
    from app.jobs.email import reminder_key

    options.setdefault("idempotency_key", reminder_key(user_id, on))
    return job("send_opportunity_reminder", user_id=user_id, on=on, **options)


def opportunity_reminder(user_id: int, on: dt.date | None = None, **options: Any) -> JobRef:
    """Remind a user of deadlines and new matches for the day ``on`` (default: today, UTC)."""
    session = options.pop("session", None)
    prepared = opportunity_reminder_job(user_id, on or dt.datetime.now(dt.UTC).date(), **options)
    return many([prepared], session=session)[0]


def proposal_notification(proposal_id: int, event: str, status: str | None = None, **options: Any) -> JobRef:
    """Tell a proposal's owner and collaborators about ``event`` (created, submitted, status_changed, ...).

    For ``status_changed`` pass the new ``status`` so that each change is an email of its own.
    """
    if status is not None:
        options["status"] = status
    return send("send_proposal_notification", proposal_id=proposal_id, event=event, **options)


def weekly_summary_job(
    user_id: int, week: str, attachments: Iterable[str] = (), **options: Any
) -> PreparedJob:
    """The weekly summary of ``user_id`` for ISO ``week``, prepared for :func:`many`."""
    from app.jobs.email import weekly_key

    options.setdefault("idempotency_key", weekly_key(user_id, week))
    return job("send_weekly_summary", user_id=user_id, week=week, attachments=tuple(attachments), **options)


def weekly_summary(
    user_id: int, week: str | None = None, attachments: Iterable[str] = (), **options: Any
) -> JobRef:
    """Send the weekly summary of ISO ``week`` (default: the current week, UTC)."""
    session = options.pop("session", None)
    chosen = week or iso_week(dt.datetime.now(dt.UTC).date())
    return many([weekly_summary_job(user_id, chosen, attachments, **options)], session=session)[0]


def daily_reminders(at: dt.datetime | None = None, **options: Any) -> JobRef:
    """Fan out the reminders due at ``at`` (default now): users for whom it is 09:00 locally."""
    return send("dispatch_daily_reminders", at=at or dt.datetime.now(dt.UTC), **options)


def weekly_summaries(week: str | None = None, **options: Any) -> JobRef:
    """Fan out one weekly summary per user for ISO ``week`` (default: the current week)."""
    return send("dispatch_weekly_summaries", week=week or iso_week(dt.datetime.now(dt.UTC).date()), **options)


def iso_week(day: dt.date) -> str:
    """``2026-W48`` for any day of that ISO week."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# --------------------------------------------------------------------------------------- documents queue


@dataclass(frozen=True)
class DocumentRequest:
    """What a documents helper returns: the request id to poll (``app.documents.status``) and the job sent."""

    request_id: str
    job: JobRef


def report_job(
    user_id: int, report: str, format: str = "pdf", *, request_id: str | None = None, **options: Any
) -> tuple[str, PreparedJob]:
    """The ``generate_report`` job of a new (or given) request id, prepared for :func:`many`."""
    return _document_job(
        "generate_report", request_id, options, user_id=user_id, report=report, format=format
    )


def _document_job(
    actor: str, request_id: str | None, options: dict[str, Any], **kwargs: Any
) -> tuple[str, PreparedJob]:
    """The job of one document request (a new request id unless given), keyed on that id: enqueuing the same
    request again sends nothing new."""
    from app.jobs.documents import document_key, new_request_id

    chosen = request_id or new_request_id()
    options.setdefault("idempotency_key", document_key(chosen))
    return chosen, job(actor, request_id=chosen, **kwargs, **options)


def _send_document(
    actor: str, request_id: str | None, options: dict[str, Any], **kwargs: Any
) -> DocumentRequest:
    """:func:`_document_job`, sent (through the outbox when ``options`` has a ``session``)."""
    session = options.pop("session", None)
    chosen, prepared = _document_job(actor, request_id, options, **kwargs)
    return DocumentRequest(chosen, many([prepared], session=session)[0])


def report(user_id: int, report: str, format: str = "pdf", **options: Any) -> DocumentRequest:
    """Build ``report`` (pipeline, opportunities, analytics, weekly-summary) as pdf, xlsx or csv.

    Options besides the common ones: ``request_id`` (default: a new one), ``week`` (weekly-summary),
    ``bom`` (csv).
    """
    return _send_document(
        "generate_report",
        options.pop("request_id", None),
        options,
        user_id=user_id,
        report=report,
        format=format,
    )


def weekly_report_request_id(user_id: int, week: str) -> str:
    """``weekly-42-2026-W48``: one weekly-summary PDF per user and week, whoever asks for it."""
    return f"weekly-{user_id}-{week}"


def weekly_summary_with_report_jobs(user_id: int, week: str) -> list[PreparedJob]:
    """The user's weekly-summary PDF job, then the weekly email attaching that PDF (by its known path).

    The email is retried while the file does not exist yet (``app/email/attachments.py``), so it goes out
    once the documents queue has written the PDF, within the email queue's retry window (about an hour).
    """
    from app.documents.storage import default_path

    request_id = weekly_report_request_id(user_id, week)
    _, pdf = report_job(user_id, "weekly-summary", "pdf", request_id=request_id, week=week)
    attachment = default_path("report", request_id, "pdf")
    return [pdf, weekly_summary_job(user_id, week, attachments=(attachment,))]


def data_export(
    user_id: int,
    dataset: str,
    format: str = "csv",
    filters: dict[str, Any] | None = None,
    *,
    request_id: str | None = None,
    **options: Any,
) -> DocumentRequest:
    """Export ``dataset`` (opportunities, saved_opportunities, proposals, entities) as csv, xlsx or jsonl.

    ``filters``: posted_from, posted_to, naics, set_aside, agency, active, status (see ``ExportFilters``).
    """
    return _send_document(
        "export_data",
        request_id,
        options,
        user_id=user_id,
        dataset=dataset,
        format=format,
        filters=filters or {},
    )


def attachment_job(
    notice_id: str, url: str, *, request_id: str | None = None, **options: Any
) -> tuple[str, PreparedJob]:
    """The ``process_attachment`` job of one attachment, prepared for :func:`many` (a notice's links in one
    round trip)."""
    from app.jobs.documents import attachment_request_id

    chosen = request_id or attachment_request_id(notice_id, url)
    return _document_job("process_attachment", chosen, options, notice_id=notice_id, url=url)


def attachment(notice_id: str, url: str, **options: Any) -> DocumentRequest:
    """Download and process one attachment of ``notice_id`` (type, pages, text; deduplicated by sha256).

    The request id defaults to one derived from (notice, URL), so enqueuing the same attachment again is
    the same request: once it is done, nothing is downloaded again. ``request_id=`` forces another one.
    """
    session = options.pop("session", None)
    chosen, prepared = attachment_job(notice_id, url, **options)
    return DocumentRequest(chosen, many([prepared], session=session)[0])


def compliance_matrix(
    notice_id: str | None = None,
    proposal_id: int | None = None,
    format: str = "xlsx",
    *,
    request_id: str | None = None,
    **options: Any,
) -> DocumentRequest:
    """Build the compliance matrix (xlsx or pdf) of a notice, or of a proposal's notice, from its description
    and the attachments processed so far."""
    return _send_document(
        "build_compliance_matrix",
        request_id,
        options,
        notice_id=notice_id,
        proposal_id=proposal_id,
        format=format,
    )


# -------------------------------------------------------------------------------------------- sync queue


def sam_sync(
    posted_from: dt.date | str | None = None,
    posted_to: dt.date | str | None = None,
    full: bool = False,
    **options: Any,
) -> JobRef:
    """Sync SAM.gov opportunities: incremental from the watermark by default, a range (dates or ISO strings;
    ``posted_to`` defaults to today), or ``full``. Long ranges fan out into partitions (docs/sync.md)."""
    return send("sync_opportunities", full=full, posted_from=posted_from, posted_to=posted_to, **options)


def entity_sync(ueis: Iterable[str] | None = None, **options: Any) -> JobRef:
    """Refresh SAM.gov entities: the given UEIs, or every awardee and tracked entity when none are given."""
    return send("sync_entities", ueis=tuple(ueis) if ueis is not None else None, **options)


def analytics_refresh(**options: Any) -> JobRef:
    """Rebuild the analytics aggregate tables."""
    return send("refresh_analytics", **options)


def cleanup(**options: Any) -> JobRef:
    """Apply the retention settings (``RETENTION_*_DAYS``) in batches."""
    return send("cleanup_data", **options)
