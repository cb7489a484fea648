"""Exactly-once bookkeeping in ``email_log``: claim a key before sending, mark it sent after.

A key's row moves ``claimed → sent`` (or ``skipped``, or ``failed``). Claiming is one INSERT that loses to any
existing row; a loser may take the row over only when it is ``failed`` or its lease has run out (its sender
died), and does so with one conditional UPDATE, so two workers can never both hold a live claim on PostgreSQL
or SQLite. Every step commits at once: a claim must be durable before the email leaves.

The lease outlives any live sender (the longest email actor's time limit is 2 minutes), so only a dead process's
claim is ever taken over: that is the one duplicate left (docs/email.md, "the open window").
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.db.models import EmailLog
from app.db.session import session_scope
from app.db.types import utcnow
from app.errors import RetryableError

logger = logging.getLogger(__name__)

#: How long a claim protects a send in progress; longer than any email actor's time limit.
CLAIM_LEASE = dt.timedelta(minutes=3)
#: Width of ``email_log.skip_reason`` (also used for the reason of a permanent failure).
REASON_WIDTH = 64

CLAIMED, SENT, SKIPPED, FAILED = "claimed", "sent", "skipped", "failed"


class ClaimResult(enum.Enum):
    #: This process holds the key and must send, then mark.
    CLAIMED = "claimed"
    #: The key is already sent or skipped: do nothing.
    DONE = "done"


class ClaimHeld(RetryableError):
    """Another worker is sending this email now; try again after a while."""


@dataclass(frozen=True)
class ClaimRequest:
    key: str
    kind: str
    user_id: int | None
    recipient: str | None
    message_id: str | None = None


@contextmanager
def _connection(session: Session | None) -> Iterator[Connection]:
    """The caller's transaction when given (it commits), else a transaction of our own committed at once.

    Statements run on the Connection (Core), not through the ORM session: these are plain single-row writes,
    and the ORM's bulk-update bookkeeping roughly doubles their CPU cost.
    """
    if session is not None:
        yield session.connection()
        return
    with session_scope() as own:
        yield own.connection()


def claim(
    request: ClaimRequest, *, lease: dt.timedelta = CLAIM_LEASE, session: Session | None = None
) -> ClaimResult:
    """Claim ``request.key``; :class:`ClaimHeld` when a live claim of another sender holds it.

    With ``session`` the claim joins the caller's transaction, which must commit before the email is sent.
    """
    now = utcnow()
    with _connection(session) as connection:
        values = _row_values(request, status=CLAIMED, lease_expires_at=now + lease, now=now)
        if _insert_if_absent(connection, values):
            return ClaimResult.CLAIMED
        if _take_over(connection, request, now=now, values={**values, "attempts": EmailLog.attempts + 1}):
            logger.info(
                "email claim taken over", extra={"idempotency_key": request.key, "kind": request.kind}
            )
            return ClaimResult.CLAIMED
        status = connection.scalar(select(EmailLog.status).where(EmailLog.idempotency_key == request.key))
    if status in (SENT, SKIPPED):
        return ClaimResult.DONE
    raise ClaimHeld(f"email {request.key} is being sent by another worker")


def record_skip(request: ClaimRequest, reason: str, *, session: Session | None = None) -> bool:
    """Record that the email is not sent and why; False when the key was already sent or is being sent."""
    now = utcnow()
    values = _row_values(request, status=SKIPPED, lease_expires_at=None, now=now)
    values["skip_reason"] = reason[:REASON_WIDTH]
    with _connection(session) as connection:
        return _insert_if_absent(connection, values) or _take_over(
            connection, request, now=now, values=values
        )


def mark_sent(key: str, provider_message_id: str | None, *, session: Session | None = None) -> None:
    """The email left: nothing will send it again. Runs in ``session`` when given (to commit with it)."""
    statement = (
        update(EmailLog)
        .where(EmailLog.idempotency_key == key)
        .values(
            status=SENT,
            provider_message_id=(provider_message_id or None) and provider_message_id[:128],
            sent_at=utcnow(),
            lease_expires_at=None,
            skip_reason=None,
        )
    )
    with _connection(session) as connection:
        connection.execute(statement)


def release(key: str, *, failed_reason: str | None = None) -> None:
    """Give a claim up after a failed send: ``failed`` (permanent) or claimable again at once (transient)."""
    values: dict[str, object] = {"lease_expires_at": utcnow()}
    if failed_reason is not None:
        values.update(status=FAILED, skip_reason=failed_reason[:REASON_WIDTH])
    with _connection(None) as connection:
        connection.execute(
            update(EmailLog)
            .where(EmailLog.idempotency_key == key, EmailLog.status == CLAIMED)
            .values(**values)
        )


def _row_values(
    request: ClaimRequest, *, status: str, lease_expires_at: dt.datetime | None, now: dt.datetime
) -> dict[str, object]:
    return {
        "idempotency_key": request.key,
        "kind": request.kind,
        "user_id": request.user_id,
        "recipient": request.recipient,
        "status": status,
        "message_id": request.message_id,
        "claimed_at": now,
        "lease_expires_at": lease_expires_at,
    }


def _insert_if_absent(connection: Connection, values: dict[str, object]) -> bool:
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(EmailLog)
        .values(attempts=1, **values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(EmailLog.idempotency_key)
    )
    # RETURNING rather than rowcount: drivers disagree on the rowcount of an INSERT that did nothing.
    return connection.execute(statement).first() is not None


def _take_over(
    connection: Connection, request: ClaimRequest, *, now: dt.datetime, values: dict[str, object]
) -> bool:
    """Atomically take a row that is failed or whose claim has lapsed (one conditional UPDATE)."""
    takeable = or_(
        EmailLog.status == FAILED,
        and_(
            EmailLog.status == CLAIMED,
            or_(EmailLog.lease_expires_at.is_(None), EmailLog.lease_expires_at <= now),
        ),
    )
    changes = {k: v for k, v in values.items() if k != "idempotency_key"}
    statement = (
        update(EmailLog)
        .where(EmailLog.idempotency_key == request.key, takeable)
        .values(**changes)
        .returning(EmailLog.idempotency_key)
    )
    return connection.execute(statement).first() is not None
