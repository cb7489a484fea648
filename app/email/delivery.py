"""One email, exactly once: skip or claim, render, send, mark. Every kind goes through :func:`deliver`.

The order matters. The claim is committed before the email leaves (so a duplicate message finds it), and the
mark is committed after (so a retry of a sent email does nothing). A failed send gives the claim back at once:
``failed`` for a permanent error (a requeue from the dead letters may try again), claimable for a transient one.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app import metrics
from app.constants import EMAIL_QUEUE
from app.db.session import autocommit_scope, session_scope
from app.email import claims, links
from app.email.attachments import load_attachments
from app.email.backends import EmailBackend, get_backend
from app.email.content.common import USER_BY_ID, UserRecord, get_user
from app.email.message import OutgoingEmail
from app.email.recipients import Recipient
from app.email.rendering import EmailRenderer, get_renderer
from app.errors import PermanentError

logger = logging.getLogger(__name__)


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
    return deliver_built(lambda _session: job, backend=backend, renderer=renderer, lease=lease)


def deliver_built(
    build: Callable[[Session], EmailJob],
    *,
    backend: EmailBackend | None = None,
    renderer: EmailRenderer | None = None,
    lease: dt.timedelta = claims.CLAIM_LEASE,
) -> Outcome:
    """Build the job, claim (or skip) its key, send, mark: all on one connection, in autocommit.

    The builder's reads, the claim and the mark need no common transaction (each write is one atomic statement
    and is durable when it returns, so the claim is committed before anything is sent). A BEGIN and a COMMIT
    round trip per statement, and a connection checkout per step, were a good part of what an email cost
    besides the HTTP call.
    """
    with autocommit_scope() as session:
        job = build(session)
        decision = _claim_or_skip(job, session, lease)
        if decision is not None:
            _report_not_sent(job, decision)
            return decision
        return _send_and_mark(job, session, backend, renderer)


def deliver_for_user(
    key: str,
    kind: str,
    user_id: int,
    build: Callable[[Session, UserRecord], EmailJob],
    *,
    backend: EmailBackend | None = None,
    renderer: EmailRenderer | None = None,
    lease: dt.timedelta = claims.CLAIM_LEASE,
) -> Outcome:
    """:func:`deliver_built` for the kinds whose key follows from the message (welcome, reminder, weekly summary):
    the claim is taken by the statement that loads the user (:func:`claims.claim_with_user`), before the content
    is built, and given up (or settled as skipped) if the build fails or finds nothing to send.

    Each database statement of an email costs far more than its SQL in a busy eight-thread worker (a GIL hand-off
    at every step of the driver); loading the user and claiming in one went from three statements per email to
    two. A key that already has a row (a duplicate, a live or lapsed claim) takes the general path, whose rules
    for such rows are unchanged.
    """
    request = claims.ClaimRequest(
        key=key, kind=kind, user_id=user_id, recipient=None, message_id=current_message_id()
    )
    with autocommit_scope() as session:
        row, claimed = claims.claim_with_user(request, load=USER_BY_ID, session=session, lease=lease)
        if row is None:
            raise PermanentError(f"user {user_id} does not exist")
        if claimed:
            try:
                job = build(session, UserRecord(**row))
            except BaseException as err:
                _give_back(key, err)
                raise
            if job.key != key:
                # A builder out of step with its key function would send under a key nobody claimed.
                mismatch = PermanentError(f"built {job.key!r} for the claim {key!r}")
                _give_back(key, mismatch)
                raise mismatch
            reason = job.skip_reason or job.recipient.skip_reason(job.kind)
            if reason is not None:
                claims.settle_as_skipped(key, reason, session=session)
                _report_not_sent(job, Outcome.SKIPPED)
                return Outcome.SKIPPED
            return _send_and_mark(job, session, backend, renderer)
    return deliver_built(
        lambda session: build(session, get_user(session, user_id)),
        backend=backend,
        renderer=renderer,
        lease=lease,
    )


def _send_and_mark(
    job: EmailJob, session: Session, backend: EmailBackend | None, renderer: EmailRenderer | None
) -> Outcome:
    """This process holds the claim: send, then mark (or give the claim back and re-raise)."""
    chosen = backend or get_backend()
    provider_id = _send(job, chosen, renderer or get_renderer())
    _mark_sent(job, provider_id, session)
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


def _mark_sent(job: EmailJob, provider_id: str | None, session: Session) -> None:
    """The mark alone is one autocommitted statement; with an ``on_sent`` step both commit together."""
    if job.on_sent is None:
        claims.mark_sent(job.key, provider_id, session=session)
        return
    with session_scope() as transaction:
        claims.mark_sent(job.key, provider_id, session=transaction)
        job.on_sent(transaction)


def _report_not_sent(job: EmailJob, decision: Outcome) -> None:
    if decision is Outcome.SKIPPED:
        _count(job.kind, Outcome.SKIPPED.value)
        reason = job.skip_reason or job.recipient.skip_reason(job.kind)
        logger.info("email skipped", extra={**_fields(job), "skip_reason": reason})
    else:
        logger.info("email already handled", extra=_fields(job))


def _fields(job: EmailJob) -> dict[str, object]:
    return {"kind": job.kind, "idempotency_key": job.key, "user_id": job.recipient.user_id}


def _claim_or_skip(job: EmailJob, session: Session, lease: dt.timedelta) -> Outcome | None:
    """SKIPPED or DUPLICATE when nothing is to be sent; None when this process now holds the claim."""
    request = claims.ClaimRequest(
        key=job.key,
        kind=job.kind,
        user_id=job.recipient.user_id,
        recipient=job.recipient.email,
        message_id=current_message_id(),
    )
    reason = job.skip_reason or job.recipient.skip_reason(job.kind)
    if reason is not None:
        return Outcome.SKIPPED if claims.record_skip(request, reason, session=session) else Outcome.DUPLICATE
    if claims.claim(request, lease=lease, session=session) is claims.ClaimResult.DONE:
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


def current_message_id() -> str | None:
    """The Dramatiq message being processed, as bound into the log context by the JobLog middleware."""
    value = structlog.contextvars.get_contextvars().get("message_id")
    return str(value) if value else None


def _give_back(key: str, err: BaseException) -> None:
    try:
        claims.release(key, failed_reason=str(err) if isinstance(err, PermanentError) else None)
    except SQLAlchemyError:
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
