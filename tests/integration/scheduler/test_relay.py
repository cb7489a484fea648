"""The leader's outbox relay thread in-process: it runs while the lock is held and stops when the lease is lost
(here: the lock's key deleted under it, as a Redis restart would), without the engine having to wait for it."""

from __future__ import annotations

import json

import pytest
import redis

from app import enqueue
from app.db.session import session_scope
from app.scheduler.leader import LEADER_KEY, LeaderLock
from app.scheduler.relay import LeaderRelay
from tests.support.helpers import wait_for

pytestmark = pytest.mark.integration


def commit_welcome_email(user_id: int) -> str:
    with session_scope() as session:
        return enqueue.welcome_email(user_id=user_id, session=session).message_id


def email_queue_ids(client: redis.Redis) -> list[str]:
    return [json.loads(body)["message_id"] for body in client.hvals("dramatiq:email.msgs")]


def test_the_relay_thread_publishes_while_leading_and_stops_when_the_lease_is_lost(
    scheduler_env: dict[str, str], redis_client: redis.Redis
) -> None:
    lock = LeaderLock("test:relay", ttl_s=5, renew_s=0.1)
    relay = LeaderRelay(lock, poll_s=0.05)
    try:
        # Given a replica that leads and follows its lead with the relay
        assert lock.refresh()
        relay.follow(True)
        first = commit_welcome_email(1)
        wait_for(lambda: first in email_queue_ids(redis_client), timeout=10, what="the relay's publish")
        assert relay.running()

        # When its lock disappears (Redis restarted empty) and the next renewal fails
        redis_client.delete(LEADER_KEY)
        wait_for(lambda: not lock.refresh(), timeout=10, what="the lease to be lost")

        # Then the thread ends on its own, before the engine's next step tells it (the lease check before each
        # batch), and a new lead starts a new one
        wait_for(lambda: not relay.running(), timeout=10, what="the relay thread to end")
        relay.follow(False)
        wait_for(lock.refresh, timeout=10, what="the lock taken again")
        relay.follow(True)
        second = commit_welcome_email(2)
        wait_for(lambda: second in email_queue_ids(redis_client), timeout=10, what="the new relay's publish")
    finally:
        relay.stop()
        lock.release()
    assert not relay.running()
    assert sorted(email_queue_ids(redis_client)) == sorted([first, second])
