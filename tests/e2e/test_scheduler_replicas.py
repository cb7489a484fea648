"""Scheduler replicas as real ``jobs scheduler`` processes: each fire enqueued exactly once, across a graceful
handover (SIGTERM), a killed leader (SIGKILL), and a bad ``SCHEDULES_FILE``.

Schedules fire every second (a test ``SCHEDULES_FILE``); the lock's TTL is short so a takeover after a kill
comes within seconds. Messages stay on their queues (no worker runs), where the test counts their keys.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.helpers import ROOT, free_port, wait_for
from tests.support.scheduler import (
    FAST_LOCK,
    SchedulerProcess,
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


@pytest.fixture
def replica_env(platform_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = schedules_env(platform_env, tmp_path, every_second(*NAMES, grace_s=5))
    return {**env, **FAST_LOCK, "SCHEDULER_DLQ_SYNC_INTERVAL_S": "60"}


def _assert_every_fire_once(client: redis.Redis, *, killed: SchedulerProcess | None = None) -> None:
    """Every second from a schedule's first fire to its last has one row; each enqueued row is one message.

    A leader killed between a fire's claim and its publish leaves that row ``claimed`` (the new leader sends it
    once the claim is stale, later than the test waits): allowed for ``killed``'s rows only.
    """
    keys = queued_once(client)
    for name in NAMES:
        rows = one_row_per_second(name)
        for row in rows:
            abandoned = (
                killed is not None and row.status == "claimed" and row.replica.endswith(f":{killed.pid}")
            )
            assert row.status in ("enqueued", "missed") or abandoned, (row.fire_time, row.status, row.reason)
        sent = {
            f"schedule:{name}:{r.fire_time.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            for r in rows
            if r.status == "enqueued"
        }
        assert sent == {k for k in keys if k.startswith(f"schedule:{name}:")}


def _enqueued_by(replica: SchedulerProcess) -> int:
    return sum(1 for name in NAMES for r in enqueued_runs(name) if r.replica.endswith(f":{replica.pid}"))


def test_two_replicas_fire_each_once_and_a_sigterm_hands_over_without_a_gap(
    replica_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given two replicas, with a longer TTL so that a handover that waited for it would show as missed fires
    env = {**replica_env, "SCHEDULER_LOCK_TTL_S": "6"}
    with scheduler_replicas(env, tmp_path) as start:
        leader, standby = leader_and_standby(redis_client, start)
        wait_for(lambda: _enqueued_by(leader) >= 14, timeout=40, what="14 fires by the first leader")

        # When the leader is stopped gracefully
        leader.signal(signal.SIGTERM)
        assert leader.proc.wait(20) == 0

        # Then the standby takes over at once and goes on firing
        wait_for(lambda: _enqueued_by(standby) >= 16, timeout=40, what="16 fires by the standby")

    assert "leadership released" in leader.output()
    _assert_every_fire_once(redis_client)
    # The handover did not wait for the TTL (6 s, which would coalesce about 5 fires of each schedule): at most
    # the fire or two due while the standby noticed were coalesced
    missed = [r for r in runs() if r.status == "missed"]
    for name in NAMES:
        assert len([r for r in missed if r.name == name]) <= 2, [
            (r.name, r.fire_time, r.reason) for r in missed
        ]
    assert sum(len(enqueued_runs(n)) for n in NAMES) >= 30


def test_a_killed_leader_is_replaced_within_the_lock_ttl_and_no_fire_is_lost_or_doubled(
    replica_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    with scheduler_replicas(replica_env, tmp_path) as start:
        leader, standby = leader_and_standby(redis_client, start)
        wait_for(lambda: _enqueued_by(leader) >= 6, timeout=40, what="6 fires by the first leader")

        # When the leader is killed outright (no release: its lock must expire)
        leader.signal(signal.SIGKILL)
        leader.proc.wait(10)
        killed_at = dt.datetime.now(dt.UTC)

        # Then the standby fires within the TTL (2 s) plus its polling, and goes on
        wait_for(lambda: _enqueued_by(standby) >= 8, timeout=40, what="8 fires by the standby")

    first_by_standby = min(
        r.fire_time for n in NAMES for r in enqueued_runs(n) if r.replica.endswith(f":{standby.pid}")
    )
    # fire times are whole seconds: the standby's first one is the latest fire before it took over
    assert first_by_standby <= killed_at + dt.timedelta(seconds=2 + 0.5 + 1.5)
    _assert_every_fire_once(redis_client, killed=leader)


def test_a_malformed_schedules_file_stops_the_scheduler_with_one_line(
    platform_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text('[cleanup]\ntrigger = "interval"\nseconds = "soon"\n')
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "scheduler", "--http-port", "0"],
        env={**platform_env, "SCHEDULES_FILE": str(path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["jobs: invalid SCHEDULES_FILE: [cleanup] seconds: must be a number of at least 0"]


def test_a_pause_from_another_process_stops_the_running_leader_until_resumed(
    replica_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    import httpx

    from app.scheduler import state

    port = free_port()
    with scheduler_replicas(replica_env, tmp_path) as start:
        leader = wait_leader(redis_client, [start(http_port=port)])
        wait_for(lambda: len(enqueued_runs("cleanup")) >= 2, timeout=40, what="cleanup firing")

        # When an operator pauses cleanup from this process (only the database is shared with the leader)
        state.pause("cleanup", by="test:operator")
        paused_at = dt.datetime.now(dt.UTC)
        # the other schedule goes on: the leader is alive and skipping cleanup, not stuck
        seen = len(enqueued_runs("weekly-reports"))
        wait_for(
            lambda: len(enqueued_runs("weekly-reports")) >= seen + 4, timeout=40, what="4 more weekly fires"
        )
        while_paused = [
            r for r in enqueued_runs("cleanup") if r.fire_time > paused_at + dt.timedelta(seconds=1)
        ]
        assert while_paused == []

        # Then after resume it fires again, from its next fire (the paused seconds are not caught up)
        state.resume("cleanup", by="test:operator")
        resumed_at = dt.datetime.now(dt.UTC)
        wait_for(
            lambda: any(r.fire_time >= resumed_at for r in enqueued_runs("cleanup")),
            timeout=40,
            what="cleanup again",
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)

    gap = [r for r in runs("cleanup") if paused_at + dt.timedelta(seconds=1) < r.fire_time < resumed_at]
    assert gap == []  # no row at all: paused fires are neither sent nor recorded missed
    assert health.status_code == 200 and health.text == "leader\n"
    assert 'worker_schedule_last_run_timestamp_seconds{schedule="cleanup"}' in metrics
    assert f'worker_scheduler_leader{{replica="{_replica_of(leader)}"}} 1.0' in metrics
    assert 'worker_schedule_fires_total{schedule="weekly-reports",status="enqueued"}' in metrics


def _replica_of(process: SchedulerProcess) -> str:
    """``host:pid`` as the process recorded itself in ``schedule_runs.replica``."""
    return str(next(r.replica for r in runs() if r.replica.endswith(f":{process.pid}")))
