"""The control API (``app/scheduler/state.py``) the CLI and the admin use, from a process that does not lead."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import redis

from app.db.models import ScheduleRun
from app.db.session import session_scope
from app.scheduler import state
from app.scheduler.fire import fire, fire_key
from schedules import Schedule
from tests.integration.scheduler.conftest import table
from tests.support.scheduler import queued_keys, runs

pytestmark = pytest.mark.integration


def test_run_now_enqueues_a_fire_of_its_own_each_time(
    scheduler_env: dict[str, str], redis_client: redis.Redis
) -> None:
    # When an operator runs weekly-reports now, twice, from a process that holds no lock
    first = state.run_now("weekly-reports", by="cli:alice")
    second = state.run_now("weekly-reports", by="cli:alice")

    # Then each is a manual fire with its own key, enqueued once
    assert first.status == second.status == "manual"
    assert first.key != second.key and first.key == fire_key("weekly-reports", first.fire_time)
    assert queued_keys(redis_client) == {first.key: 1, second.key: 1}
    rows = runs("weekly-reports")
    assert [(r.manual, r.triggered_by, r.message_id) for r in rows] == [
        (True, "cli:alice", first.message_id),
        (True, "cli:alice", second.message_id),
    ]
    recent = state.recent_runs("weekly-reports")
    assert [r.message_id for r in recent] == [second.message_id, first.message_id]


def test_an_unknown_name_is_refused(scheduler_env: dict[str, str]) -> None:
    with pytest.raises(state.UnknownSchedule, match="nightly"):
        state.run_now("nightly", by="cli:alice")
    with pytest.raises(state.UnknownSchedule):
        state.pause("nightly", by="cli:alice")


def test_a_fire_already_claimed_sends_nothing(
    scheduler_env: dict[str, str], redis_client: redis.Redis
) -> None:
    cleanup = next(s for s in table() if s.name == "cleanup")
    moment = dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC)
    sent = fire(cleanup, moment, now=moment, replica="a:1")
    again = fire(cleanup, moment, now=moment, replica="b:2")
    assert sent.status == "enqueued" and not sent.duplicate
    assert again.duplicate and again.message_id is None
    assert queued_keys(redis_client) == {sent.key: 1}


def test_a_target_actor_not_in_the_catalogue_is_skipped_with_its_reason(
    scheduler_env: dict[str, str], redis_client: redis.Redis
) -> None:
    cleanup = next(s for s in table() if s.name == "cleanup")
    future = dataclasses.replace(cleanup, schedule=Schedule("cleanup", "purge_everything", {}, 60))
    result = fire(
        future, dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC), now=dt.datetime.now(dt.UTC), replica="a:1"
    )
    assert result.status == "skipped" and "purge_everything" in (result.reason or "")
    assert [(r.status, r.reason) for r in runs("cleanup")] == [("skipped", result.reason)]
    assert not queued_keys(redis_client)


def test_states_show_last_fire_outcome_missed_and_pause(
    scheduler_env: dict[str, str], redis_client: redis.Redis
) -> None:
    # Given a fire of cleanup whose job succeeded, two missed ones, and a paused weekly-reports
    fired = state.run_now("cleanup", by="admin:bob")
    with session_scope() as session:
        from app.db.models import JobRun

        session.add(
            JobRun(message_id=fired.message_id, queue="sync", actor="cleanup_data", status="succeeded")
        )
        for hour in (1, 2):
            session.add(
                ScheduleRun(
                    name="cleanup",
                    fire_time=dt.datetime(2026, 1, 1, hour, tzinfo=dt.UTC),
                    status="missed",
                    reason="more than its grace time late",
                )
            )
    state.pause("weekly-reports", by="admin:bob")

    # Then the states say so, in table order
    states = {s.name: s for s in state.schedule_states()}
    assert list(states) == [
        "daily-reminders",
        "sam-sync",
        "entity-sync",
        "analytics-refresh",
        "cleanup",
        "weekly-reports",
    ]
    cleanup = states["cleanup"]
    assert (cleanup.last_fire, cleanup.last_status, cleanup.last_outcome) == (
        fired.fire_time,
        "manual",
        "succeeded",
    )
    assert cleanup.missed_count == 2 and cleanup.target_actor == "cleanup_data"
    assert cleanup.next_fire is not None and cleanup.next_fire > dt.datetime.now(dt.UTC)
    assert "hour='2'" in cleanup.trigger
    assert states["weekly-reports"].paused and not cleanup.paused
    state.resume("weekly-reports", by="admin:bob")
    assert not next(s for s in state.schedule_states() if s.name == "weekly-reports").paused


def test_a_fire_whose_publish_failed_is_sent_by_the_retry_once_the_broker_is_back(
    scheduler_env: dict[str, str], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.scheduler.fire import retry_unsent
    from app.settings import reset_settings
    from tests.support.helpers import free_port

    cleanup = next(s for s in table() if s.name == "cleanup")
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)

    # Given a fire claimed while the broker was unreachable
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    failed = fire(cleanup, moment, now=moment, replica="a:1")
    assert failed.status == "failed" and (failed.reason or "").startswith("enqueue failed")

    # When the broker is back and the leader retries inside the grace time
    monkeypatch.setenv("REDIS_URL", scheduler_env["REDIS_URL"])
    reset_settings()
    assert retry_unsent([cleanup], now=moment + dt.timedelta(seconds=5), replica="b:2") == 1

    # Then it was sent once, with the fire's key, and a second retry finds nothing to do
    assert queued_keys(redis_client) == {failed.key: 1}
    assert [(r.status, r.replica) for r in runs("cleanup")] == [("enqueued", "b:2")]
    assert retry_unsent([cleanup], now=moment + dt.timedelta(seconds=10), replica="b:2") == 0
