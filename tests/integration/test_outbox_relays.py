"""Two outbox relays at once on PostgreSQL (the scheduler leader's and a standalone ``jobs relay``, or an old and
a new leader): rows in another relay's open batch are skipped, not published twice."""

from __future__ import annotations

import json

import pytest
import redis
from sqlalchemy import select

from app import enqueue
from app.db.models import OutboxEntry
from app.db.session import session_scope
from app.outbox import relay_once

pytestmark = pytest.mark.integration


def email_queue_ids(client: redis.Redis) -> list[str]:
    return [json.loads(body)["message_id"] for body in client.hvals("dramatiq:email.msgs")]


def test_a_relay_skips_the_rows_of_another_relays_open_batch(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    # Given five committed outbox rows
    with session_scope() as session:
        ids = [enqueue.welcome_email(user_id=u, session=session).message_id for u in range(1, 6)]

    # When one relay holds the first two in its batch (selected, not yet published nor committed)
    with session_scope() as holder:
        held = holder.scalars(
            select(OutboxEntry)
            .where(OutboxEntry.published_at.is_(None))
            .order_by(OutboxEntry.id)
            .limit(2)
            .with_for_update(skip_locked=True)
        ).all()
        assert [e.message_id for e in held] == ids[:2]
        # Then another relay publishes only the other three, without waiting for the first
        with session_scope() as other:
            assert relay_once(other) == 3
        assert sorted(email_queue_ids(redis_client)) == sorted(ids[2:])
        holder.rollback()  # the first relay died before publishing: its rows stay unpublished

    # And once released, they are published once each
    with session_scope() as session:
        assert relay_once(session) == 2
        assert relay_once(session) == 0
    assert sorted(email_queue_ids(redis_client)) == sorted(ids)
