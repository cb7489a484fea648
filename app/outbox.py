"""The transactional outbox: jobs written in the caller's transaction, published by the relay after commit.

A job enqueued with ``session=`` cannot be lost by a crash after commit, nor sent for a transaction that rolled
back. The relay publishes in id order, pipelined, and marks rows published; a crash between publish and mark
re-publishes the same message id, which consumers' idempotency absorbs.
"""

from __future__ import annotations

from collections.abc import Sequence

from dramatiq import Message
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import OutboxEntry
from app.db.types import utcnow
from app.transport.publish import Outgoing, publish


def stage(session: Session, outgoing: Sequence[Outgoing]) -> None:
    """Add the messages to ``session``; they are published only if the caller commits."""
    for message, delay_ms in outgoing:
        session.add(
            OutboxEntry(
                message_id=message.message_id,
                queue=message.queue_name,
                actor=message.actor_name,
                payload=message.encode().decode(),
                delay_ms=delay_ms,
            )
        )


def relay_once(session: Session, *, batch: int = 500) -> int:
    """Publish up to ``batch`` unpublished entries; returns how many. Safe to run in several processes."""
    query = (
        select(OutboxEntry).where(OutboxEntry.published_at.is_(None)).order_by(OutboxEntry.id).limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    entries = session.scalars(query).all()
    if not entries:
        return 0
    publish([(Message.decode(e.payload.encode()), e.delay_ms) for e in entries])
    now = utcnow()
    for entry in entries:
        entry.published_at = now
    session.commit()
    return len(entries)


def run_relay(*, once: bool = False, interval: float = 0.5) -> None:
    """The relay loop of ``jobs relay``: publish until stopped (or until nothing is pending, with ``once``)."""
    import signal
    import threading

    from app.db.session import session_scope

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.is_set():
        with session_scope() as session:
            published = relay_once(session)
        if once and not published:
            return
        if not published:
            stop.wait(interval)
