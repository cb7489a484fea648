"""Redis dies and comes back empty under two scheduler replicas: the lock, the queues and every done-mark are
gone, yet no fire is sent twice, because each fire's claim is its ``schedule_runs`` row in PostgreSQL."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import redis

from tests.support.helpers import wait_for
from tests.support.redis_server import RedisServer, owned_redis  # noqa: F401  (a fixture)
from tests.support.scheduler import (
    FAST_LOCK,
    enqueued_runs,
    every_second,
    leader_and_standby,
    one_row_per_second,
    queued_once,
    runs,
    scheduler_replicas,
    schedules_env,
    wait_leader,
)

pytestmark = pytest.mark.e2e

NAMES = ("cleanup", "weekly-reports")


def _wipe(server: RedisServer) -> None:
    """Delete the server's data files, so that it restarts empty (as a Redis without persistence would)."""
    for entry in server.directory.iterdir():
        if entry.name != "redis.log":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def test_redis_restarted_empty_mid_run_sends_no_fire_twice(
    platform_env: dict[str, str],
    owned_redis: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {
        **schedules_env(platform_env, tmp_path, every_second(*NAMES, grace_s=5)),
        **FAST_LOCK,
        "REDIS_URL": owned_redis.url(),
    }
    client: redis.Redis = owned_redis.client()
    total = lambda: sum(len(enqueued_runs(n)) for n in NAMES)  # noqa: E731
    with scheduler_replicas(env, tmp_path) as start:
        leader, standby = leader_and_standby(client, start)
        replicas = [leader, standby]
        wait_for(lambda: total() >= 8, timeout=40, what="8 fires before the outage")

        # When Redis is killed and restarted with nothing
        owned_redis.kill()
        wait_for(lambda: "leadership lost" in leader.output(), timeout=20, what="the leader to step down")
        before = {r.fire_time for n in NAMES for r in runs(n) if r.status == "enqueued"}
        _wipe(owned_redis)
        owned_redis.start()
        assert client.dbsize() == 0
        after_restart = total()

        # Then firing resumes under whichever replica takes the lock
        wait_leader(client, replicas)
        wait_for(lambda: total() >= after_restart + 8, timeout=40, what="8 fires after the restart")
        for replica in replicas:
            replica.signal(signal.SIGTERM)

    # No fire sent before the outage was sent again (the done-marks and the lock were lost with Redis) ...
    keys = queued_once(client)
    resent = [k for k in keys if any(k.endswith(t.strftime("%Y-%m-%dT%H:%M:%SZ")) for t in before)]
    assert resent == []
    # ... and every second has exactly one row, none left half-sent
    for name in NAMES:
        rows = one_row_per_second(name)
        assert {r.status for r in rows} <= {"enqueued", "missed", "failed"}, [
            (r.status, r.reason) for r in rows
        ]
        assert all(r.reason.startswith("enqueue failed") for r in rows if r.status == "failed")
