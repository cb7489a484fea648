"""The SAM.gov key in Sentry: real sync failures, through the platform's Sentry middleware and sentry-sdk's real
transport, into the local envelope server.

The key travels as ``api_key`` in every request URL, so a failing partition is where it could leak: in the
exception's value, a breadcrumb, a request URL, extra/contexts or tags. What left the worker is checked byte for
byte, after the worker has exited (the SDK sends what it still holds at exit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from app.db.models import DeadLetter, SyncRun
from app.db.session import session_scope
from app.sync.client import DATE_FORMAT
from app.testing.samgov_server import Fault, SamGovSimulator
from app.testing.sentry_server import SentryServer
from tests.support.helpers import wait_for
from tests.support.samgov import SAMGOV_TEST_KEY
from tests.support.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.integration

PARTITION = "sync_opportunity_partition"


@pytest.fixture
def sentry() -> Iterator[SentryServer]:
    with SentryServer() as server:
        yield server


@pytest.fixture
def sentry_sync_worker(
    sync_env: dict[str, str], redis_client: redis.Redis, sentry: SentryServer, tmp_path: Path
) -> Iterator[WorkerProcess]:
    env = {**sync_env, "SENTRY_DSN": sentry.dsn, "SENTRY_ENVIRONMENT": "test"}
    with running_worker(
        env,
        redis_client,
        tmp_path / "worker.log",
        modules=("actors.sync", "actors.email"),
        queues=("sync", "email"),
    ) as worker:
        yield worker


def sync_and_close(posted_from: dt.date, posted_to: dt.date, worker: WorkerProcess) -> SyncRun:
    """Sync the range and wait until its run is closed (every partition succeeded or dead-lettered)."""
    from app import enqueue

    with session_scope() as session:
        before = set(session.scalars(select(SyncRun.id)))
    enqueue.sam_sync(posted_from=posted_from, posted_to=posted_to)

    def closed() -> SyncRun | None:
        if worker.proc.poll() is not None:
            raise AssertionError(worker.output())
        with session_scope() as session:
            rows = session.scalars(select(SyncRun).where(SyncRun.kind == "opportunities")).all()
        new = [r for r in rows if r.id not in before]
        return new[0] if new and new[0].status != "running" else None

    wait_for(lambda: closed() is not None, timeout=30, what="the sync run closed")
    run = closed()
    assert run is not None
    return run


def dead_partition_letters() -> list[DeadLetter]:
    with session_scope() as session:
        return list(session.scalars(select(DeadLetter).where(DeadLetter.actor == PARTITION)))


def partition_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if (e.get("tags") or {}).get("actor") == PARTITION]


def exception_of(event: dict[str, Any]) -> tuple[str, str]:
    last = event["exception"]["values"][-1]
    return last["type"], last.get("value") or ""


def assert_no_key_left(sentry: SentryServer, *keys: str) -> None:
    """Not one byte of a key, nor an ``api_key=`` of any URL, in any item of any envelope sent."""
    raw = sentry.raw
    assert raw, "nothing reached the Sentry server"
    for needle in (*keys, "api_key="):
        assert needle.encode() not in raw, needle
        assert needle.lower().encode() not in raw.lower(), needle


def test_partitions_failing_with_503_and_resets_reach_sentry_without_the_key(
    sync_env: dict[str, str],
    simulator: SamGovSimulator,
    sentry_sync_worker: WorkerProcess,
    sentry: SentryServer,
) -> None:
    # Given four 30-day partitions: SAM.gov keeps answering 503 to one and resetting the connection of another
    first, last = simulator.dataset.start, simulator.dataset.end
    unavailable, reset = first, first + dt.timedelta(days=30)
    simulator.script(Fault.error(503), times=1000, when={"postedFrom": unavailable.strftime(DATE_FORMAT)})
    simulator.script(Fault.reset(), times=1000, when={"postedFrom": reset.strftime(DATE_FORMAT)})

    # When the range is synced: each failing page is retried in place, the partition retried, then dead-lettered
    run = sync_and_close(first, last, sentry_sync_worker)
    assert (run.partitions_done, run.partitions_failed) == (4, 2)
    wait_for(lambda: len(dead_partition_letters()) == 2, timeout=10, what="two dead letters")
    sentry.wait_for_events(2, timeout=15)
    assert sentry_sync_worker.stop() == 0

    # Then exactly one error event per dead partition arrived, retryable, with its retried attempt as a breadcrumb
    events = partition_events(sentry.events)
    assert len(events) == 2 == len(sentry.events), [e.get("tags") for e in sentry.events]
    assert not sentry.errors
    values = sorted(exception_of(e) for e in events)
    assert [t for t, _ in values] == ["SamGovUnavailable", "SamGovUnavailable"]
    assert any("503" in v for _, v in values) and any("connection failed" in v for _, v in values)
    assert {e["tags"]["message_id"] for e in events} == {d.message_id for d in dead_partition_letters()}
    for event in events:
        crumbs = [c.get("message", "") for c in (event.get("breadcrumbs") or {}).get("values", [])]
        assert f"{PARTITION} attempt 1 failed: SamGovUnavailable" in crumbs
        assert "SamGovUnavailable" in event["fingerprint"]
    # And the key left the process in none of the envelopes' bytes
    assert simulator.count(status=503) > 0
    assert_no_key_left(sentry, SAMGOV_TEST_KEY)


def test_a_refused_key_is_one_permanent_event_without_the_key(
    sync_env: dict[str, str],
    simulator: SamGovSimulator,
    sentry_sync_worker: WorkerProcess,
    sentry: SentryServer,
) -> None:
    # Given SAM.gov refusing the worker's key with 401 (the key was revoked: the simulator now wants another)
    simulator.configure(auth_status=401)
    simulator.api_key = "another-" + SAMGOV_TEST_KEY
    last = simulator.dataset.end

    # When a one-partition range is synced
    run = sync_and_close(last - dt.timedelta(days=6), last, sentry_sync_worker)
    assert (run.status, run.partitions_done, run.partitions_failed) == ("failed", 1, 1)
    wait_for(lambda: len(dead_partition_letters()) == 1, timeout=10, what="the dead letter")
    sentry.wait_for_events(1, timeout=15)
    assert sentry_sync_worker.stop() == 0

    # Then one event says the key was refused, at the first attempt (permanent: no retry, no breadcrumb of one)
    assert simulator.count(status=401) == 1
    (event,) = sentry.events
    exc_type, value = exception_of(event)
    assert exc_type == "SamGovAuthError"
    assert "(401)" in value and "check SAM_GOV_API_KEY" in value
    assert event["tags"]["attempt"] == "1" and event["tags"]["actor"] == PARTITION
    # And neither the refused key nor the simulator's is in any byte sent
    assert_no_key_left(sentry, SAMGOV_TEST_KEY, simulator.api_key)
