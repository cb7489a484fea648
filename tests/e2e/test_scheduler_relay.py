"""The outbox relay inside ``jobs scheduler``: real scheduler processes and no ``jobs relay`` process.

The leader publishes what the web app committed to the outbox; after a SIGTERM of the leader the standby takes
the relay over with the lock; with ``SCHEDULER_RUN_RELAY=false`` nothing is published. Messages stay on their
queue (no worker runs), where the test reads their ids.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from app import enqueue
from app.db.models import OutboxEntry
from app.db.session import session_scope
from tests.support.helpers import wait_for
from tests.support.scheduler import (
    enqueued_runs,
    every_second,
    leader_and_standby,
    scheduler_replicas,
    schedules_env,
    wait_leader,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture
def scheduler_env(platform_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **schedules_env(platform_env, tmp_path, every_second("cleanup")),
        "SCHEDULER_LOCK_TTL_S": "6",  # a handover that waited for the TTL would not be the SIGTERM's
        "SCHEDULER_LOCK_RENEW_S": "0.5",
        "SCHEDULER_DLQ_SYNC_INTERVAL_S": "60",
    }


def commit_welcome_email(user_id: int) -> str:
    """A welcome email enqueued in a committed transaction (the web app's way); its message id."""
    with session_scope() as session:
        return enqueue.welcome_email(user_id=user_id, session=session).message_id


def email_queue_ids(client: redis.Redis) -> list[str]:
    return [json.loads(body)["message_id"] for body in client.hvals("dramatiq:email.msgs")]


def published_at(message_id: str) -> dt.datetime | None:
    with session_scope() as session:
        return session.scalar(select(OutboxEntry.published_at).where(OutboxEntry.message_id == message_id))


def test_the_leader_relays_the_outbox_and_the_standby_takes_over_after_sigterm(
    scheduler_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    with scheduler_replicas(scheduler_env, tmp_path) as start:
        leader, standby = leader_and_standby(redis_client, start)

        # When a job is committed to the outbox, with no `jobs relay` process anywhere
        first = commit_welcome_email(1)

        # Then the leader publishes it, once, and marks the row; the standby runs no relay
        wait_for(lambda: first in email_queue_ids(redis_client), timeout=15, what="the leader's relay")
        assert published_at(first) is not None
        assert "outbox relay started" in leader.output()
        assert "outbox relay started" not in standby.output()

        # When the leader is stopped gracefully
        leader.signal(signal.SIGTERM)
        assert leader.proc.wait(20) == 0
        second = commit_welcome_email(2)

        # Then the standby, now leading, publishes the next one
        wait_for(lambda: second in email_queue_ids(redis_client), timeout=15, what="the new leader's relay")
        assert wait_leader(redis_client, [standby]) is standby
        assert "outbox relay started" in standby.output()

    assert sorted(email_queue_ids(redis_client)) == sorted([first, second])
    # the old leader's relay ended before it gave up the lock
    output = leader.output()
    assert output.index("outbox relay stopped") < output.index("leadership released")


def test_with_scheduler_run_relay_false_the_leader_publishes_nothing(
    scheduler_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    with scheduler_replicas({**scheduler_env, "SCHEDULER_RUN_RELAY": "false"}, tmp_path) as start:
        leader = wait_leader(redis_client, [start()])
        message_id = commit_welcome_email(1)
        committed = dt.datetime.now(dt.UTC)

        # When the leader has gone on working for two seconds after the commit (its every-second fires show it)
        wait_for(
            lambda: any(r.fire_time >= committed + dt.timedelta(seconds=2) for r in enqueued_runs("cleanup")),
            timeout=20,
            what="cleanup fires after the commit",
        )

    # Then the row is still waiting for a relay, and nothing reached the email queue
    assert published_at(message_id) is None
    assert email_queue_ids(redis_client) == []
    assert "outbox relay off" in leader.output()
    assert "outbox relay started" not in leader.output()
