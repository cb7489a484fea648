"""Opportunity runs through real worker processes: fan-out into partition messages, fan-in closing the run,
a 429 in the middle of a partition, partitions that keep failing (dead letters, the 70 % rule, the alert), and
the retry of failed partitions alone. The API key must appear in no log line, dead letter or stored argument."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from app.db.models import DeadLetter, JobRun, Opportunity, SyncPartition, SyncRun
from app.db.session import session_scope
from app.sync import runs
from app.sync.client import DATE_FORMAT
from app.testing.samgov_server import Fault, SamGovSimulator
from tests.support.helpers import wait_for
from tests.support.samgov import SAMGOV_TEST_KEY
from tests.support.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def sync_worker(
    sync_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> Iterator[WorkerProcess]:
    """One worker group on the sync and email queues (the alert goes through the email queue)."""
    with running_worker(
        sync_env,
        redis_client,
        tmp_path / "worker.log",
        modules=("actors.sync", "actors.email"),
        queues=("sync", "email"),
        threads=4,
    ) as worker:
        yield worker


def run_row(run_id: int) -> SyncRun:
    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        return run


def wait_closed(run_id: int, worker: WorkerProcess, timeout: float = 45) -> SyncRun:
    def closed() -> bool:
        if worker.proc.poll() is not None:
            raise AssertionError(worker.output())
        return run_row(run_id).status != "running"

    wait_for(closed, timeout=timeout, what=f"sync run {run_id} closed")
    return run_row(run_id)


def assert_no_key(worker: WorkerProcess) -> None:
    assert SAMGOV_TEST_KEY not in worker.output()
    with session_scope() as session:
        for letter in session.scalars(select(DeadLetter)):
            stored = json.dumps([letter.args, letter.kwargs, letter.options]) + letter.exception_message
            assert SAMGOV_TEST_KEY not in stored + (letter.traceback or "")
        for text in session.scalars(select(JobRun.args_text)):
            assert SAMGOV_TEST_KEY not in text
        for error in session.scalars(select(SyncPartition.error).where(SyncPartition.error.is_not(None))):
            assert SAMGOV_TEST_KEY not in error


def test_a_429_in_the_middle_of_a_partition_resumes_at_the_page_it_stopped(
    sync_env: dict[str, str],
    simulator: SamGovSimulator,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given one partition of three pages, and SAM.gov answering 429 to its second page (next access in 1 s)
    sync_env = {**sync_env, "SYNC_PARTITION_DAYS": "120", "SAM_GOV_OFFSET_MODE": "record"}
    simulator.script(Fault.rate_limited(next_access_in_s=1), on_request=2)
    first, last = simulator.dataset.start, simulator.dataset.end
    with running_worker(
        sync_env, redis_client, tmp_path / "w.log", modules=("actors.sync",), queues=("sync",)
    ) as worker:
        from app import enqueue

        enqueue.sam_sync(posted_from=first, posted_to=last)

        # When the 429 came, the day's budget was marked spent: here the quota resets (as at 00:00 UTC)
        wait_for(lambda: simulator.count(status=429) == 1, timeout=30, what="the 429")
        wait_for(lambda: quota_spent(redis_client), timeout=10, what="the budget marked spent")
        for key in redis_client.scan_iter("jobs:samgov:quota:*"):
            redis_client.delete(key)
        wait_for(lambda: run_ids() != [], timeout=10, what="the run row")
        run = wait_closed(run_ids()[0], worker)

        # Then the partition resumed at the page that was refused: no page was read twice, none is missing
        assert run.status == "succeeded"
        answered = [r.offset for r in simulator.requests if r.status == 200]
        assert answered == [0, 1000, 2000]
        assert [r.offset for r in simulator.requests if r.status == 429] == [1000]
        with session_scope() as session:
            stored = session.scalar(select(func.count()).select_from(Opportunity))
        assert stored == len(simulator.dataset.valid_ids(first, last))
        assert_no_key(worker)


def quota_spent(client: redis.Redis) -> bool:
    """The client marks the day's budget spent right after SAM.gov's 429 (SAM_GOV_DAILY_QUOTA, default 1000)."""
    return any(int(client.get(key) or 0) >= 1000 for key in client.scan_iter("jobs:samgov:quota:*"))


def run_ids() -> list[int]:
    with session_scope() as session:
        return list(session.scalars(select(SyncRun.id).where(SyncRun.kind == "opportunities")))


def test_partitions_that_keep_failing_are_dead_lettered_the_run_fails_alerts_and_retries_only_them(
    sync_env: dict[str, str], simulator: SamGovSimulator, sync_worker: WorkerProcess
) -> None:
    # Given four 30-day partitions, two of which SAM.gov keeps answering 503
    first, last = simulator.dataset.start, simulator.dataset.end
    failing = [first, first + dt.timedelta(days=60)]
    for day in failing:
        simulator.script(Fault.error(503), times=1000, when={"postedFrom": day.strftime(DATE_FORMAT)})
    from app import enqueue

    # When the range is synced
    enqueue.sam_sync(posted_from=first.isoformat(), posted_to=last.isoformat())
    wait_for(lambda: run_ids() != [], timeout=10, what="the run row")
    run_id = run_ids()[0]
    run = wait_closed(run_id, sync_worker)

    # Then the two partitions are dead-lettered after their retries and counted as failed: 2/4 < 70 %
    assert (run.status, run.partitions_done, run.partitions_failed) == ("failed", 4, 2)
    with session_scope() as session:
        letters = session.scalars(
            select(DeadLetter).where(DeadLetter.actor == "sync_opportunity_partition")
        ).all()
        parts = {
            p.posted_from: p
            for p in session.scalars(select(SyncPartition).where(SyncPartition.run_id == run_id))
        }
    wait_for(lambda: len(dead_partitions()) == 2, timeout=10, what="two dead letters")
    assert sorted(dead_partitions()) == sorted(d.isoformat() for d in failing)
    assert letters is not None
    assert {parts[d].status for d in failing} == {"failed"}
    assert all(parts[d].attempts == 2 and "503" in (parts[d].error or "") for d in failing)
    succeeded_before = {d: (p.attempts, p.finished_at) for d, p in parts.items() if d not in failing}

    # And the alert went to ADMIN_EMAILS through the email queue
    outbox = Path(sync_env["EMAIL_OUTBOX_DIR"])
    wait_for(lambda: list(outbox.glob("*.eml")), timeout=20, what="the alert email")
    alert = next(outbox.glob("*.eml")).read_text()
    assert f"Sync run {run_id} failed" in alert and "ops@example.com" in alert

    # When SAM.gov recovers and the failed partitions are retried
    simulator.clear_faults()
    before = len(simulator.requests)
    assert sorted(runs.retry_failed(run_id, who="test")) == sorted(parts[d].id for d in failing)
    run = wait_closed(run_id, sync_worker)

    # Then only they ran again, and the run is whole
    assert run.status == "succeeded" and run.partitions_failed == 0
    asked = {r.params["postedFrom"] for r in simulator.requests[before:]}
    assert asked == {d.strftime(DATE_FORMAT) for d in failing}
    with session_scope() as session:
        again = {
            p.posted_from: p
            for p in session.scalars(select(SyncPartition).where(SyncPartition.run_id == run_id))
        }
        stored = session.scalar(select(func.count()).select_from(Opportunity))
    assert {d: (p.attempts, p.finished_at) for d, p in again.items() if d not in failing} == succeeded_before
    assert stored == len(simulator.dataset.valid_ids(first, last))
    wait_for(analytics_refreshed, timeout=20, what="refresh_analytics after the run closed")
    assert_no_key(sync_worker)


def dead_partitions() -> list[str]:
    with session_scope() as session:
        letters = session.scalars(select(DeadLetter).where(DeadLetter.actor == "sync_opportunity_partition"))
        return [str(letter.kwargs["posted_from"]) for letter in letters]


def analytics_refreshed() -> bool:
    with session_scope() as session:
        return bool(session.scalar(select(func.count()).where(SyncRun.kind == "analytics")))
