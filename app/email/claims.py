"""Exactly-once bookkeeping in ``email_log``: claim a key before sending, mark it sent after.

A key's row moves ``claimed → sent`` (or ``skipped``, or ``failed``). Claiming is one INSERT that loses to any
existing row; a loser may take the row over when it is ``failed``, when its lease has run out, or when the
Dramatiq worker that holds it (``claimed_by``) is known to be dead (its heartbeat is gone). Each take-over is
one conditional UPDATE, so two senders can never both hold a live claim, on PostgreSQL or SQLite. A claim must
be committed before the email leaves.

A live claim of a living sender is waited for without spending a retry: :class:`ClaimHeld` is a
:class:`~app.errors.RateLimited` whose ``retry_after`` is the end of the lease. The lease outlives any live
sender (the longest email actor's time limit is 2 minutes). What is left is docs/email.md, "The open window".
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import ColumnElement, Table, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from app.db.models import EmailLog
from app.db.session import transaction
from app.db.types import utcnow
from app.errors import RateLimited
from app.transport.workers import worker_is_alive

logger = logging.getLogger(__name__)

#: How long a claim protects a send in progress; longer than any email actor's time limit.
CLAIM_LEASE = dt.timedelta(minutes=3)
#: Added to the time left on a held claim's lease before its waiter tries again (clocks, commit latency).
LEASE_MARGIN_S = 1.0
#: Width of ``email_log.skip_reason`` (also used for the reason of a permanent failure).
REASON_WIDTH = 64

CLAIMED, SENT, SKIPPED, FAILED = "claimed", "sent", "skipped", "failed"

_TABLE: Table = EmailLog.__table__  # type: ignore[assignment]

# The statements every email runs, built once: SQLAlchemy then finds their compiled form in its cache without
# rebuilding and hashing a new statement per email (the claim and the mark cost about half the CPU they did).
# The INSERT takes its column values from the execution parameters.
# RETURNING rather than rowcount: drivers disagree on the rowcount of an INSERT that did nothing.
_INSERT_IF_ABSENT = {
    "postgresql": postgresql.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_TABLE.c.idempotency_key),
    "sqlite": sqlite.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_TABLE.c.idempotency_key),
}
_MARK_SENT = (
    update(_TABLE)
    .where(_TABLE.c.idempotency_key == bindparam("key"))
    .values(
        status=SENT,
        provider_message_id=bindparam("provider_id"),
        sent_at=bindparam("now"),
        lease_expires_at=None,
        skip_reason=None,
    )
)


class ClaimResult(enum.Enum):
    #: This process holds the key and must send, then mark.
    CLAIMED = "claimed"
    #: The key is already sent or skipped: do nothing.
    DONE = "done"


class ClaimHeld(RateLimited):
    """Another living sender holds this email's claim: try again when its lease ends (no attempt spent)."""


@dataclass(frozen=True)
class ClaimRequest:
    key: str
    kind: str
    user_id: int | None
    recipient: str | None
    message_id: str | None = None
    #: The Dramatiq worker (broker id) claiming; None outside a worker (then only the lease frees the claim).
    worker_id: str | None = None


@contextmanager
def _connection(connection: Connection | None) -> Iterator[Connection]:
    """The caller's connection (its transaction commits the statements), else a transaction of our own."""
    if connection is not None:
        yield connection
        return
    with transaction() as own:
        yield own


def claim(
    request: ClaimRequest,
    *,
    lease: dt.timedelta = CLAIM_LEASE,
    connection: Connection | None = None,
) -> ClaimResult:
    """Claim ``request.key``; :class:`ClaimHeld` when a live claim of another living sender holds it.

    With ``connection`` the claim joins the caller's transaction, which must commit before the email is sent.
    """
    now = utcnow()
    values = _row_values(request, status=CLAIMED, lease_expires_at=now + lease, now=now)
    with _connection(connection) as conn:
        if _insert_if_absent(conn, values) or _take_over(conn, request.key, values, _lapsed(now)):
            return ClaimResult.CLAIMED
        row = conn.execute(
            select(
                _TABLE.c.status, _TABLE.c.claimed_by, _TABLE.c.message_id, _TABLE.c.lease_expires_at
            ).where(_TABLE.c.idempotency_key == request.key)
        ).one()
        if row.status in (SENT, SKIPPED):
            return ClaimResult.DONE
        if _own_earlier_attempt(row.claimed_by, row.message_id, request) and _take_over(
            conn, request.key, values, _held_by(request.worker_id, request.message_id)
        ):
            logger.info(
                "email claim of an earlier attempt of this message taken over",
                extra={"idempotency_key": request.key, "kind": request.kind},
            )
            return ClaimResult.CLAIMED
        dead = _dead_holder(row.claimed_by, request)
        if dead is not None and _take_over(conn, request.key, values, _held_by(dead)):
            logger.info(
                "email claim of a dead worker taken over",
                extra={"idempotency_key": request.key, "kind": request.kind, "dead_worker": dead},
            )
            return ClaimResult.CLAIMED
    wait = (row.lease_expires_at - now).total_seconds() if row.lease_expires_at is not None else 0.0
    raise ClaimHeld(max(wait, 0.0) + LEASE_MARGIN_S, f"email {request.key} is being sent by another worker")


def _dead_holder(holder: str | None, request: ClaimRequest) -> str | None:
    """The holder of a live claim when it is another worker known to be dead. A claim taken outside a worker
    names none, and when Redis cannot say, the holder counts as alive: waiting is safe, a wrong take-over not."""
    if holder is None or holder == request.worker_id:
        return None
    try:
        return None if worker_is_alive(holder) else holder
    except redis.RedisError:
        logger.warning("could not check a claim holder's heartbeat", extra={"worker_id": holder})
        return None


def record_skip(request: ClaimRequest, reason: str, *, connection: Connection | None = None) -> bool:
    """Record that the email is not sent and why; False when the key was already sent or is being sent."""
    now = utcnow()
    values = _row_values(request, status=SKIPPED, lease_expires_at=None, now=now)
    values["skip_reason"] = reason[:REASON_WIDTH]
    with _connection(connection) as conn:
        return _insert_if_absent(conn, values) or _take_over(
            conn, request.key, values, _lapsed(now), count_attempt=False
        )


def mark_sent(key: str, provider_message_id: str | None, *, connection: Connection | None = None) -> None:
    """The email left: nothing will send it again. Joins ``connection``'s transaction when given."""
    provider_id = (provider_message_id or None) and provider_message_id[:128]
    with _connection(connection) as conn:
        conn.execute(_MARK_SENT, {"key": key, "provider_id": provider_id, "now": utcnow()})


def release(key: str, *, failed_reason: str | None = None) -> None:
    """Give a claim up after a failed send: ``failed`` (permanent) or claimable again at once (transient)."""
    values: dict[str, object] = {"lease_expires_at": utcnow()}
    if failed_reason is not None:
        values.update(status=FAILED, skip_reason=failed_reason[:REASON_WIDTH])
    with transaction() as conn:
        conn.execute(
            update(_TABLE).where(_TABLE.c.idempotency_key == key, _TABLE.c.status == CLAIMED).values(**values)
        )


def _row_values(
    request: ClaimRequest, *, status: str, lease_expires_at: dt.datetime | None, now: dt.datetime
) -> dict[str, Any]:
    return {
        "idempotency_key": request.key,
        "kind": request.kind,
        "user_id": request.user_id,
        "recipient": request.recipient,
        "status": status,
        "message_id": request.message_id,
        "claimed_by": request.worker_id,
        "claimed_at": now,
        "lease_expires_at": lease_expires_at,
    }


def _insert_if_absent(connection: Connection, values: dict[str, Any]) -> bool:
    statement = _INSERT_IF_ABSENT[connection.dialect.name]
    return connection.execute(statement, {"attempts": 1, **values}).first() is not None


def _lapsed(now: dt.datetime) -> ColumnElement[bool]:
    """A row anyone may take: failed, or claimed with a lease that has run out."""
    return or_(
        _TABLE.c.status == FAILED,
        and_(
            _TABLE.c.status == CLAIMED,
            or_(_TABLE.c.lease_expires_at.is_(None), _TABLE.c.lease_expires_at <= now),
        ),
    )


def _own_earlier_attempt(holder: str | None, message_id: str | None, request: ClaimRequest) -> bool:
    """The claim was taken by this worker for this very message: an attempt that has ended (a worker runs a
    message on one thread at a time), e.g. one whose commit was cut off with the database; its retry need not
    wait for the lease."""
    if holder is None or request.message_id is None:
        return False
    return holder == request.worker_id and message_id == request.message_id


def _held_by(worker_id: str | None, message_id: str | None = None) -> ColumnElement[bool]:
    condition = and_(_TABLE.c.status == CLAIMED, _TABLE.c.claimed_by == worker_id)
    return condition if message_id is None else and_(condition, _TABLE.c.message_id == message_id)


def _take_over(
    connection: Connection,
    key: str,
    values: dict[str, Any],
    takeable: ColumnElement[bool],
    *,
    count_attempt: bool = True,
) -> bool:
    """One conditional UPDATE (atomic on both backends): True when the row was ``takeable`` and is now ours."""
    changes = {name: value for name, value in values.items() if name != "idempotency_key"}
    if count_attempt:
        changes["attempts"] = _TABLE.c.attempts + 1
    statement = (
        update(_TABLE)
        .where(_TABLE.c.idempotency_key == key, takeable)
        .values(**changes)
        .returning(_TABLE.c.idempotency_key)
    )
    return connection.execute(statement).first() is not None
