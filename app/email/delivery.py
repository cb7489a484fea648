"""One email, exactly once: build and claim (or skip), send, mark. Every kind goes through :func:`deliver_built`.

The order matters. The claim is committed before the email leaves (so a duplicate message finds it), and the
mark is committed after (so a retry of a sent email does nothing). Each database step checks a connection out
of the pool and gives it back; none is held while the email is on its way to SendGrid (100-600 ms), so a
worker needs far fewer connections than threads (docs/email.md, "Connections").

A failed send gives the claim back at once: ``failed`` for a permanent error (a requeue from the dead letters may
try again), claimable for a transient one. A send that succeeded is never sent again by this process because
the mark failed: the mark is retried in process, and if the database stays away the message itself records
"sent, provider id" in its options, so its retry only marks (docs/email.md, "A database outage").
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dramatiq.middleware import CurrentMessage
from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from app import metrics
from app.actor import current_message_id
from app.constants import EMAIL_QUEUE
from app.db.session import autocommit, transaction
from app.email import claims, links
from app.email.attachments import load_attachments
from app.email.backends import EmailBackend, get_backend
from app.email.content.common import UserRecord, get_user
from app.email.message import OutgoingEmail
from app.email.recipients import Recipient
from app.email.rendering import EmailRenderer, get_renderer
from app.errors import DatabaseBusy, PermanentError, RateLimited
from app.transport.workers import current_worker_id

logger = logging.getLogger(__name__)

#: Message option of the emails this message sent but could not mark: idempotency key -> provider id ("" if none).
SENT_OPTION = "emails_sent"
#: How long a failed mark is retried in process, within the shortest email actor's time limit (60 s).
MARK_RETRY_FOR_S = 20.0
#: First and longest pause between two tries of a failed mark.
MARK_RETRY_FIRST_S, MARK_RETRY_MAX_S = 0.2, 3.0
#: When a message that could not mark comes back to mark only.
MARK_PENDING_RETRY_S = 10.0

#: Errors of a database that is away or out of free connections for now.
_DATABASE_AWAY = (OperationalError, InterfaceError, DatabaseBusy)


class MarkPending(RateLimited):
    """The email left but could not be marked sent: the message comes back to mark it only (no attempt spent)."""


class Outcome(enum.Enum):
    SENT = "sent"
    SKIPPED = "skipped"
    #: Already sent or skipped under the same key: nothing done.
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class EmailJob:
    """One email to one recipient, described by its kind-specific builder (:mod:`app.email.content`)."""

    kind: str
    key: str
    recipient: Recipient
    #: Template variables of the kind; the common ones (recipient, links) are added by :func:`compose`.
    context: Mapping[str, Any]
    #: Paths under STORAGE_DIR.
    attachments: tuple[str, ...] = ()
    #: Set by the builder when there is nothing to say (e.g. a reminder without deadlines or matches).
    skip_reason: str | None = None
    #: Runs in the transaction that marks the email sent (e.g. to move the user's last-reminder time).
    on_sent: Callable[[Session], None] | None = None


def deliver(
    job: EmailJob,
    *,
    backend: EmailBackend | None = None,
    renderer: EmailRenderer | None = None,
    lease: dt.timedelta = claims.CLAIM_LEASE,
) -> Outcome:
    """Send ``job`` unless its key is done; raise the backend's error (after giving the claim back) on failure."""
    return deliver_built(lambda _connection: job, backend=backend, renderer=renderer, lease=lease)


def deliver_for_user(
    key: str,
    user_id: int,
    build: Callable[[Session, UserRecord], EmailJob],
    *,
    backend: EmailBackend | None = None,
    renderer: EmailRenderer | None = None,
    lease: dt.timedelta = claims.CLAIM_LEASE,
) -> Outcome:
    """:func:`deliver_built` for the kinds keyed by their message (welcome, reminder, weekly summary): loads the
    user (:class:`PermanentError` when missing) and refuses content built under another key than ``key``, which
    would be sent under a key the message's enqueue filter does not know.

    ``build`` gets an ORM session on the step's connection for the kinds that read ORM entities (it touches the
    connection only when used, so the welcome email, which reads nothing more, pays nothing for it).
    """

    def built(connection: Connection) -> EmailJob:
        user = get_user(connection, user_id)
        with Session(bind=connection) as session:
            job = build(session, user)
        if job.key != key:
            raise PermanentError(f"built {job.key!r} for the key {key!r}")
        return job

    return deliver_built(built, backend=backend, renderer=renderer, lease=lease)


def deliver_built(
    build: Callable[[Connection], EmailJob],
    *,
    backend: EmailBackend | None = None,
    renderer: EmailRenderer | None = None,
    lease: dt.timedelta = claims.CLAIM_LEASE,
) -> Outcome:
    """Build the job and claim (or skip) its key on one checkout, then send and mark with none held.

    Core statements on a pooled connection in autocommit: each claim statement is atomic by itself and is
    committed as it runs, so the claim is committed before the email leaves. An ORM session per step added only
    CPU, and a transaction two round trips (psycopg sends BEGIN and COMMIT on their own): docs/benchmarks.md,
    "CPU per email after the simplification".
    """
    with autocommit() as connection:
        job = build(connection)
        sent_earlier = _sent_by_this_message(job.key)
        decision = None if sent_earlier is not None else _claim_or_skip(job, connection, lease)
    if sent_earlier is not None:
        # An earlier attempt of this message sent it and could not mark it: mark only.
        _mark_or_remember(job, sent_earlier or None)
        _count(job.kind, Outcome.SENT.value)
        logger.info("email marked sent after an earlier attempt sent it", extra=_fields(job))
        return Outcome.SENT
    if decision is not None:
        _report_not_sent(job, decision)
        return decision
    return _send_and_mark(job, backend, renderer)


def _send_and_mark(job: EmailJob, backend: EmailBackend | None, renderer: EmailRenderer | None) -> Outcome:
    """This process holds the claim: send, then mark (or give the claim back and re-raise)."""
    chosen = backend or get_backend()
    provider_id = _send(job, chosen, renderer or get_renderer())
    _mark_or_remember(job, provider_id)
    _count(job.kind, Outcome.SENT.value)
    logger.info(
        "email sent", extra={**_fields(job), "backend": chosen.name, "provider_message_id": provider_id}
    )
    return Outcome.SENT


def _send(job: EmailJob, backend: EmailBackend, renderer: EmailRenderer) -> str | None:
    """Render and send; on any failure give the claim back (see the module docstring) and re-raise."""
    try:
        return backend.send(compose(job, renderer))
    except BaseException as err:
        _give_back(job.key, err)
        _count(job.kind, "failed")
        logger.warning(
            "email not sent", extra={**_fields(job), "error_type": type(err).__qualname__, "error": str(err)}
        )
        raise


def _mark_or_remember(job: EmailJob, provider_id: str | None) -> None:
    """Mark the sent email, retrying while the database is away for up to :data:`MARK_RETRY_FOR_S`.

    Whatever stops the mark (an outage that lasts, the time limit, any other error), the email has left: the
    message records it in its options before the error propagates, so its retry marks instead of sending.
    """
    deadline = time.monotonic() + MARK_RETRY_FOR_S
    pause = MARK_RETRY_FIRST_S
    try:
        while True:
            try:
                _mark(job, provider_id)
                return
            except _DATABASE_AWAY as err:
                if time.monotonic() + pause > deadline:
                    raise MarkPending(
                        MARK_PENDING_RETRY_S, f"email {job.key} sent, not yet marked: {type(err).__name__}"
                    ) from err
                logger.warning(
                    "email sent, mark failed; retrying",
                    extra={**_fields(job), "error_type": type(err).__qualname__, "retry_in_s": pause},
                )
                time.sleep(pause)
                pause = min(pause * 2, MARK_RETRY_MAX_S)
    except BaseException:
        remembered = _remember_sent(job.key, provider_id)
        logger.error(
            "email sent but not marked",
            extra={**_fields(job), "provider_message_id": provider_id, "remembered_in_message": remembered},
        )
        raise


def _mark(job: EmailJob, provider_id: str | None) -> None:
    """The mark and the job's ``on_sent`` step commit together (``on_sent``'s session joins the transaction)."""
    if job.on_sent is None:
        with autocommit() as connection:
            claims.mark_sent(job.key, provider_id, connection=connection)
        return
    with transaction() as connection:
        claims.mark_sent(job.key, provider_id, connection=connection)
        with Session(bind=connection) as session:
            job.on_sent(session)


def _sent_by_this_message(key: str) -> str | None:
    """The provider id ("" when none) that an earlier attempt of the current message recorded for ``key``."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return None
    sent: dict[str, str] = message.options.get(SENT_OPTION) or {}
    return sent.get(key)


def _remember_sent(key: str, provider_id: str | None) -> bool:
    """Record in the current message's options that ``key`` was sent; the retry policy re-enqueues the message
    with its options. False outside a worker (then the claim lapses with its lease: docs/email.md)."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return False
    message.options.setdefault(SENT_OPTION, {})[key] = provider_id or ""
    return True


def _report_not_sent(job: EmailJob, decision: Outcome) -> None:
    if decision is Outcome.SKIPPED:
        _count(job.kind, Outcome.SKIPPED.value)
        reason = job.skip_reason or job.recipient.skip_reason(job.kind)
        logger.info("email skipped", extra={**_fields(job), "skip_reason": reason})
    else:
        logger.info("email already handled", extra=_fields(job))


def _fields(job: EmailJob) -> dict[str, object]:
    return {"kind": job.kind, "idempotency_key": job.key, "user_id": job.recipient.user_id}


def _claim_or_skip(job: EmailJob, connection: Connection, lease: dt.timedelta) -> Outcome | None:
    """SKIPPED or DUPLICATE when nothing is to be sent; None when this process now holds the claim (committed on
    ``connection`` by the time it returns)."""
    request = claims.ClaimRequest(
        key=job.key,
        kind=job.kind,
        user_id=job.recipient.user_id,
        recipient=job.recipient.email,
        message_id=current_message_id(),
        worker_id=_claiming_worker(),
    )
    reason = job.skip_reason or job.recipient.skip_reason(job.kind)
    if reason is not None:
        skipped = claims.record_skip(request, reason, connection=connection)
        return Outcome.SKIPPED if skipped else Outcome.DUPLICATE
    if claims.claim(request, lease=lease, connection=connection) is claims.ClaimResult.DONE:
        return Outcome.DUPLICATE
    return None


def compose(job: EmailJob, renderer: EmailRenderer) -> OutgoingEmail:
    """Render ``job`` into a transport-independent email with the common variables and headers."""
    assert job.recipient.email is not None  # a recipient without an address is skipped before this
    context = {
        **job.context,
        "kind": job.kind,
        "recipient": job.recipient,
        "dashboard_url": links.dashboard(),
        "unsubscribe_url": links.unsubscribe(job.kind),
    }
    rendered = renderer.render(job.kind, context)
    return OutgoingEmail(
        idempotency_key=job.key,
        kind=job.kind,
        to_email=job.recipient.email,
        to_name=job.recipient.name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        headers=links.list_unsubscribe_header(job.kind),
        attachments=load_attachments(job.attachments) if job.attachments else (),
    )


def _claiming_worker() -> str | None:
    """The worker a claim names: only a worker running a message heartbeats, so only its death is ever seen."""
    return current_worker_id() if CurrentMessage.get_current_message() is not None else None


def _give_back(key: str, err: BaseException) -> None:
    try:
        claims.release(key, failed_reason=str(err) if isinstance(err, PermanentError) else None)
    except (SQLAlchemyError, DatabaseBusy):
        # The claim then lapses with its lease; the original error is what the retry policy must see.
        logger.warning("could not release an email claim", extra={"idempotency_key": key}, exc_info=True)


def _count(kind: str, status: str) -> None:
    metrics.EMAILS_SENT.labels(EMAIL_QUEUE, kind, status).inc()


def deliver_each(jobs: list[EmailJob], **options: Any) -> list[Outcome]:
    """Deliver every job even when some fail, then raise: a transient error before a permanent one, so the
    message is retried (the sent ones are done by key) rather than dead-lettered for one bad address."""
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []
    for job in jobs:
        try:
            outcomes.append(deliver(job, **options))
        except Exception as err:  # collected and re-raised below
            errors.append(err)
    if errors:
        raise next((e for e in errors if not isinstance(e, PermanentError)), errors[0])
    return outcomes
