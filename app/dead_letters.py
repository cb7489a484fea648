"""The dead-letter archive: the ``dead_letters`` table is the source of truth, Dramatiq's XQ only a fallback.

A message that will not be retried is archived synchronously with everything needed to understand and repair it.
If the database is unreachable at that moment the message stays in the transport's dead-letter queue (XQ,
annotated with the error; :mod:`app.transport.xq`) and :func:`sync_from_xq` imports it later. Requeue sends a
fresh copy (new message id, same idempotency key, retry count reset); requeue and discard record who did it, in
the row and in the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import traceback as tb
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.errors import DecodeError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.db.models import AuditEvent, DeadLetter
from app.db.session import session_scope
from app.db.types import utcnow
from app.errors import PermanentError

logger = logging.getLogger(__name__)

#: Frames kept in an archived traceback.
TRACEBACK_FRAMES = 30
#: Options carried over to a requeued copy; retry bookkeeping is dropped so the count starts again.
REQUEUE_KEEPS = ("idempotency_key", "correlation_id")
#: Path fragments that mark a frame as the platform's own code (for fingerprints).
APP_PATH_MARKERS = ("/app/", "/actors/", "/schedules/")


@dataclass
class DeadLetterRecord:
    """Everything the archive stores about one dead message."""

    message_id: str
    queue: str
    actor: str
    reason: str
    exception_type: str
    exception_message: str
    fingerprint: str
    attempts: int = 1
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None
    raw_payload: str | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None
    enqueued_at: dt.datetime | None = None


def canonical_queue(queue_name: str) -> str:
    """``email`` for ``email.DQ``: a delayed message belongs to its queue."""
    return queue_name.removesuffix(".DQ")


def fingerprint(actor: str, exception_type: str, top_frame: str) -> str:
    """Groups failures with one cause: actor + exception type + the innermost application frame."""
    return hashlib.sha1(f"{actor}|{exception_type}|{top_frame}".encode()).hexdigest()


def top_application_frame(trace: TracebackType | None) -> str:
    """``path:function`` of the innermost frame in the platform's code (else the innermost frame at all)."""
    frames = tb.extract_tb(trace) if trace is not None else []
    for frame in reversed(frames):
        if any(marker in frame.filename for marker in APP_PATH_MARKERS):
            return f"{_short_path(frame.filename)}:{frame.name}"
    return f"{_short_path(frames[-1].filename)}:{frames[-1].name}" if frames else ""


def _short_path(path: str) -> str:
    for marker in APP_PATH_MARKERS:
        if marker in path:
            return marker.strip("/") + "/" + path.split(marker, 1)[1]
    return path.rsplit("/", 1)[-1]


def record_from_message(
    message: Message[Any], exception: BaseException | None, reason: str
) -> DeadLetterRecord:
    """Describe a decoded message that will not be retried."""
    options = {k: v for k, v in message.options.items() if k not in ("redis_message_id", "eta")}
    if exception is not None:
        exc_type = type(exception).__qualname__
        exc_message = str(exception)
        trace: str | None = "".join(tb.format_exception(exception, limit=-TRACEBACK_FRAMES))
        frame = top_application_frame(exception.__traceback__)
    else:
        exc_type = str(options.get("dead_exception_type") or "Unknown")
        exc_message = str(options.get("dead_exception_message") or "")
        trace = str(options.get("dead_traceback") or options.get("traceback") or "") or None
        frame = str(options.get("dead_top_frame") or "")
        reason = str(options.get("dead_reason") or reason)
    actor = message.actor_name
    return DeadLetterRecord(
        message_id=message.message_id,
        queue=canonical_queue(message.queue_name),
        actor=actor,
        reason=reason,
        exception_type=exc_type,
        exception_message=exc_message[:10_000],
        fingerprint=fingerprint(actor, exc_type, frame),
        attempts=int(options.get("retries", 0)) + 1,
        args=list(message.args),
        kwargs=dict(message.kwargs),
        options={k: v for k, v in options.items() if not k.startswith("dead_")},
        traceback=trace,
        correlation_id=options.get("correlation_id"),
        idempotency_key=options.get("idempotency_key"),
        enqueued_at=dt.datetime.fromtimestamp(message.message_timestamp / 1000, dt.UTC),
    )


def record_from_raw(queue: str, redis_id: str, data: bytes, error: BaseException) -> DeadLetterRecord:
    """Describe a payload that could not even be decoded (no actor, no arguments)."""
    exc_type = type(error).__qualname__
    return DeadLetterRecord(
        message_id=f"undecodable:{redis_id}",
        queue=canonical_queue(queue),
        actor="(undecodable)",
        reason="undecodable",
        exception_type=exc_type,
        exception_message=f"payload could not be decoded: {error}"[:10_000],
        fingerprint=fingerprint("(undecodable)", exc_type, ""),
        # Text columns cannot hold NUL (PostgreSQL); undecodable bytes are kept visible as escapes.
        raw_payload=data.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")[:100_000],
    )


def store(record: DeadLetterRecord) -> None:
    """Insert the record; an already archived message id is left as it is (archiving twice is harmless)."""
    try:
        with session_scope() as session:
            session.add(DeadLetter(**record.__dict__))
    except IntegrityError:
        logger.info("dead letter already archived", extra={"message_id": record.message_id})


def try_store(record: DeadLetterRecord) -> bool:
    """:func:`store`, reporting failure instead of raising: the caller then keeps the message in the XQ."""
    try:
        store(record)
    except SQLAlchemyError:
        logger.exception(
            "dead-letter archive unreachable; message kept in the XQ", extra={"queue": record.queue}
        )
        return False
    return True


def sync_from_xq(broker: dramatiq.Broker | None = None, queues: Sequence[str] | None = None) -> int:
    """Import what the transport's dead-letter queues hold into the archive; returns how many were imported.

    Run by ``jobs dlq sync``. ``queues`` defaults to the platform's queues and those ``broker`` (default: the
    process's publisher) declared. Each message leaves the XQ only once its row is stored, so an interrupted
    sync loses nothing; a message archived twice is stored once.
    """
    from app.transport import xq
    from app.transport.publish import get_publisher

    broker = broker or get_publisher()
    names = list(queues) if queues else xq.dead_letter_queues(broker)
    imported = 0
    for dead in xq.dead_messages(broker, names):
        if dead.body is None:
            xq.remove(broker, dead.queue, dead.ref)
            continue
        try:
            record = record_from_message(Message.decode(dead.body), None, "imported_from_xq")
        except DecodeError as err:
            record = record_from_raw(dead.queue, dead.ref, dead.body, err.error)
        store(record)
        xq.remove(broker, dead.queue, dead.ref)
        imported += 1
    return imported


# --------------------------------------------------------------------------------------------- operators


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operator means: by ids, or by queue/actor/fingerprint/exception type."""

    ids: tuple[int, ...] = ()
    queue: str | None = None
    actor: str | None = None
    fingerprint: str | None = None
    exception_type: str | None = None
    status: str = "dead"

    def apply(self, query: Any) -> Any:
        if self.ids:
            query = query.where(DeadLetter.id.in_(self.ids))
        for column, value in (
            (DeadLetter.queue, self.queue),
            (DeadLetter.actor, self.actor),
            (DeadLetter.fingerprint, self.fingerprint),
            (DeadLetter.exception_type, self.exception_type),
            (DeadLetter.status, self.status),
        ):
            if value:
                query = query.where(column == value)
        return query


def list_dead_letters(session: Session, where: DeadLetterFilter, *, limit: int = 100) -> list[DeadLetter]:
    query = where.apply(select(DeadLetter)).order_by(DeadLetter.failed_at.desc(), DeadLetter.id.desc())
    return list(session.scalars(query.limit(limit)))


def requeue(session: Session, where: DeadLetterFilter, *, who: str) -> list[tuple[int, str]]:
    """Send a fresh copy of each matching dead letter; returns (dead letter id, new message id) pairs."""
    from app.transport.publish import publish

    rows = list(session.scalars(where.apply(select(DeadLetter)).with_for_update()))
    if any(row.raw_payload is not None for row in rows):
        raise PermanentError("an undecodable payload cannot be requeued; discard it instead")
    messages: list[Message[Any]] = [
        Message(
            queue_name=row.queue,
            actor_name=row.actor,
            args=tuple(row.args),
            kwargs=dict(row.kwargs),
            options={
                **{k: row.options[k] for k in REQUEUE_KEEPS if k in row.options},
                "requeued_from": row.message_id,
            },
        )
        for row in rows
    ]
    if messages:
        publish([(m, None) for m in messages])
    now = utcnow()
    for row, message in zip(rows, messages, strict=True):
        row.status, row.requeued_at, row.requeued_by = "requeued", now, who
        row.requeued_message_id = message.message_id
        _audit(session, who, "requeue", row, {"new_message_id": message.message_id})
    session.commit()
    return [(row.id, m.message_id) for row, m in zip(rows, messages, strict=True)]


def discard(session: Session, where: DeadLetterFilter, *, who: str) -> int:
    """Mark matching dead letters discarded (kept for the record, never requeued)."""
    rows = list(session.scalars(where.apply(select(DeadLetter)).with_for_update()))
    now = utcnow()
    for row in rows:
        row.status, row.discarded_at, row.discarded_by = "discarded", now, who
        _audit(session, who, "discard", row, {})
    session.commit()
    return len(rows)


def _audit(session: Session, who: str, action: str, row: DeadLetter, detail: dict[str, Any]) -> None:
    session.add(
        AuditEvent(
            who=who,
            action=f"dead_letter.{action}",
            target=f"dead_letter:{row.id}",
            detail={"message_id": row.message_id, "actor": row.actor, **detail},
        )
    )


def describe(row: DeadLetter) -> dict[str, Any]:
    """A JSON-safe view of a row (CLI and admin API)."""
    out: dict[str, Any] = {}
    for column in DeadLetter.__table__.columns:
        value = getattr(row, column.key)
        out[column.key] = value.isoformat() if isinstance(value, dt.datetime) else value
    safe: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return safe
