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
import functools
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, and_, bindparam, exists, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.db.direct import DirectStatement
from app.db.models import EmailLog, User
from app.db.session import autocommit_scope
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
    """The caller's session when given (it commits), else an autocommit one: each statement here is a single
    atomic write that needs no transaction around it.

    Statements run on the Connection (Core), not through the ORM session: these are plain single-row writes,
    and the ORM's bulk-update bookkeeping roughly doubles their CPU cost.
    """
    if session is not None:
        yield session.connection()
        return
    with autocommit_scope() as own:
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
        if _take_over(connection, request, now=now, values={**values, "attempts": True}):
            logger.info(
                "email claim taken over", extra={"idempotency_key": request.key, "kind": request.kind}
            )
            return ClaimResult.CLAIMED
        status = connection.scalar(select(EmailLog.status).where(EmailLog.idempotency_key == request.key))
    if status in (SENT, SKIPPED):
        return ClaimResult.DONE
    raise ClaimHeld(f"email {request.key} is being sent by another worker")


def claim_with_user(
    request: ClaimRequest, *, load: Select[Any], session: Session, lease: dt.timedelta = CLAIM_LEASE
) -> tuple[Mapping[str, Any] | None, bool]:
    """Claim ``request.key`` for the user ``request.user_id`` and read that user with ``load`` (a select taking a
    ``user_id`` parameter): one statement on PostgreSQL, a data-modifying CTE; two on SQLite.

    Returns the user's row (None when there is no such user: then nothing is claimed either) and whether this
    call inserted a fresh claim; the claim names the user's address as recipient, as :func:`claim` does. An
    existing row for the key (sent, skipped, held, lapsed or failed) is left alone and False returned: the
    caller then goes through :func:`claim` or :func:`record_skip`, which decide what that row means.
    """
    now = utcnow()
    parameters = {
        "c_key": request.key,
        "c_kind": request.kind,
        "c_message_id": request.message_id,
        "c_now": now,
        "c_lease": now + lease,
        "user_id": request.user_id,
    }
    with _connection(session) as connection:
        if connection.dialect.name == "postgresql":
            values = _claim_and_load_statement(load).first(connection, parameters)
            if values is None:
                return None, False
            return values, bool(values.pop("claimed"))
        claimed = connection.execute(_claim_from_user_statement("sqlite"), parameters).first() is not None
        user = connection.execute(load, {"user_id": request.user_id}).first()
        return (None if user is None else dict(user._mapping)), claimed


def settle_as_skipped(key: str, reason: str, *, session: Session) -> None:
    """A claim taken by :func:`claim_with_user` whose content turned out to have nothing to send (an opted-out
    user, a reminder without news) becomes ``skipped`` with the reason, as :func:`record_skip` would record it."""
    with _connection(session) as connection:
        connection.execute(
            update(_TABLE)
            .where(_TABLE.c.idempotency_key == key, _TABLE.c.status == CLAIMED)
            .values(status=SKIPPED, skip_reason=reason[:REASON_WIDTH], lease_expires_at=None)
        )


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
    with _connection(session) as connection:
        _MARK_SENT.execute(
            connection,
            {
                "b_key": key,
                "b_provider_id": (provider_message_id or None) and provider_message_id[:128],
                "b_now": utcnow(),
            },
        )


def release(key: str, *, failed_reason: str | None = None) -> None:
    """Give a claim up after a failed send: ``failed`` (permanent) or claimable again at once (transient)."""
    values: dict[str, object] = {"lease_expires_at": utcnow()}
    if failed_reason is not None:
        values.update(status=FAILED, skip_reason=failed_reason[:REASON_WIDTH])
    with _connection(None) as connection:
        connection.execute(
            update(_TABLE).where(_TABLE.c.idempotency_key == key, _TABLE.c.status == CLAIMED).values(**values)
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


# Statements are built once, on the Table (not the ORM class), and executed with parameters: building an
# ORM-enabled statement per call, with its cache key, cost more CPU than the database round trip itself.
_TABLE: Table = EmailLog.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]

#: Run on the driver's cursor on PostgreSQL (app/db/direct.py): it and the claim are the statements of every email.
_MARK_SENT = DirectStatement(
    update(_TABLE)
    .where(_TABLE.c.idempotency_key == bindparam("b_key"))
    .values(
        status=SENT,
        provider_message_id=bindparam("b_provider_id"),
        sent_at=bindparam("b_now"),
        lease_expires_at=None,
        skip_reason=None,
    )
)


@functools.cache
def _insert_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING rather than rowcount: drivers disagree on the rowcount of an INSERT that did nothing.
    return (
        insert(_TABLE)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_TABLE.c.idempotency_key)
    )


@functools.cache
def _take_over_statement(columns: frozenset[str], count_attempt: bool) -> Any:
    """Take a row that is failed or whose claim has lapsed: one conditional UPDATE, atomic on both backends."""
    takeable = or_(
        _TABLE.c.status == FAILED,
        and_(
            _TABLE.c.status == CLAIMED,
            or_(_TABLE.c.lease_expires_at.is_(None), _TABLE.c.lease_expires_at <= bindparam("b_now")),
        ),
    )
    changes: dict[str, Any] = {name: bindparam(f"v_{name}") for name in sorted(columns)}
    if count_attempt:
        changes["attempts"] = _TABLE.c.attempts + 1
    return (
        update(_TABLE)
        .where(_TABLE.c.idempotency_key == bindparam("b_key"), takeable)
        .values(**changes)
        .returning(_TABLE.c.idempotency_key)
    )


@functools.cache
def _claim_from_user_statement(dialect: str) -> Any:
    """INSERT ... SELECT from the user's row: a user who does not exist gets no claim."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    source = select(
        bindparam("c_key", type_=_TABLE.c.idempotency_key.type),
        bindparam("c_kind", type_=_TABLE.c.kind.type),
        _USERS.c.id,
        _USERS.c.email,
        literal(CLAIMED, type_=_TABLE.c.status.type),
        bindparam("c_message_id", type_=_TABLE.c.message_id.type),
        literal(1, type_=_TABLE.c.attempts.type),
        bindparam("c_now", type_=_TABLE.c.claimed_at.type),
        bindparam("c_lease", type_=_TABLE.c.lease_expires_at.type),
    ).where(_USERS.c.id == bindparam("user_id"))
    columns = ["idempotency_key", "kind", "user_id", "recipient", "status", "message_id", "attempts"]
    return (
        insert(_TABLE)
        .from_select([*columns, "claimed_at", "lease_expires_at"], source)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_TABLE.c.idempotency_key)
    )


@functools.cache
def _claim_and_load_statement(load: Select[Any]) -> DirectStatement:
    """``load`` plus a ``claimed`` column, with the claim as a data-modifying CTE: PostgreSQL runs it exactly once,
    whether or not the outer query reads it, and the outer query reads only what it returned. Run on the driver's
    cursor (app/db/direct.py)."""
    fresh = _claim_from_user_statement("postgresql").cte("fresh_claim")
    return DirectStatement(load.add_columns(exists(select(fresh.c.idempotency_key)).label("claimed")))


def _insert_if_absent(connection: Connection, values: dict[str, object]) -> bool:
    statement = _insert_statement(connection.dialect.name)
    return connection.execute(statement, {"attempts": 1, **values}).first() is not None


def _take_over(
    connection: Connection, request: ClaimRequest, *, now: dt.datetime, values: dict[str, object]
) -> bool:
    changes = {k: v for k, v in values.items() if k not in ("idempotency_key", "attempts")}
    statement = _take_over_statement(frozenset(changes), "attempts" in values)
    parameters = {f"v_{k}": v for k, v in changes.items()}
    return (
        connection.execute(statement, {**parameters, "b_key": request.key, "b_now": now}).first() is not None
    )
