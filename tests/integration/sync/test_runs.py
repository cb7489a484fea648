"""Opportunity runs in this process against the simulator and real PostgreSQL: planning, paging, upserts,
the fan-in and what a closed run sends next. (Real workers: test_worker_runs.py.)"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.db.models import Opportunity, OutboxEntry, SyncPartition, SyncRun
from app.db.session import session_scope
from app.settings import reset_settings
from app.sync import service
from app.testing.samgov_server import SamGovSimulator
from tests.support.samgov import samgov_client

pytestmark = pytest.mark.integration


def run_partitions(simulator: SamGovSimulator, run_id: int) -> None:
    """Run every pending partition of ``run_id`` here, as the partition messages would."""
    with session_scope() as session:
        parts = session.execute(
            select(SyncPartition.posted_from, SyncPartition.posted_to)
            .where(SyncPartition.run_id == run_id, SyncPartition.status == "pending")
            .order_by(SyncPartition.posted_from)
        ).all()
    with samgov_client(simulator) as client:
        for first, last in parts:
            service.sync_opportunity_partition(
                sync_run_id=run_id, posted_from=first, posted_to=last, client=client
            )


def full_range(simulator: SamGovSimulator) -> tuple[dt.date, dt.date]:
    return simulator.dataset.start, simulator.dataset.end


def stored_ids() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Opportunity.notice_id)))


@pytest.mark.parametrize("offset_mode", ["record", "page"])
def test_a_full_sync_stores_every_notice_exactly_once(
    sync_env: dict[str, str], simulator: SamGovSimulator, offset_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SAM.gov paging in one of its two modes, two-page windows, and notices posted while a window pages
    monkeypatch.setenv("SYNC_PARTITION_DAYS", "60")
    reset_settings()
    simulator.configure(offset_mode=offset_mode)  # type: ignore[arg-type]
    simulator.post_while_paging(3, after_requests=1)
    first, last = full_range(simulator)

    # When a range sync is planned and its partitions run
    run_id = service.sync_opportunities(posted_from=first, posted_to=last)
    run_partitions(simulator, run_id)

    # Then every valid notice is stored once, the malformed ones are counted, and the run closed whole
    expected = set(simulator.dataset.valid_ids(first, last))
    ids = stored_ids()
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        assert run.status == "succeeded" and run.partitions_total == 2 == run.partitions_done
        assert run.inserted == len(expected) and run.invalid > 0
        assert run.pages >= 4  # 1,500 notices per 60-day window, 1,000 a page
        followers = session.scalars(
            select(OutboxEntry.actor).where(OutboxEntry.created_at.is_not(None))
        ).all()
    assert followers.count("refresh_analytics") == 1 and "send_admin_alert" not in followers


def test_a_resync_writes_nothing_and_an_amendment_updates_one_row(
    sync_env: dict[str, str], simulator: SamGovSimulator
) -> None:
    first, last = full_range(simulator)
    run_partitions(simulator, service.sync_opportunities(posted_from=first, posted_to=last))
    with session_scope() as session:
        stamps = dict(session.execute(select(Opportunity.notice_id, Opportunity.updated_at)).all())

    # When the same range is synced again, with one notice amended meanwhile
    amended_id = simulator.dataset.valid_ids(first, last)[10]
    simulator.amend(amended_id, title="Amended title")
    second = service.sync_opportunities(posted_from=first, posted_to=last)
    run_partitions(simulator, second)

    # Then exactly one row was written
    with session_scope() as session:
        run = session.get(SyncRun, second)
        assert run is not None and (run.inserted, run.updated) == (0, 1)
        assert run.unchanged == len(stamps) - 1
        after = dict(session.execute(select(Opportunity.notice_id, Opportunity.updated_at)).all())
        assert session.scalar(select(Opportunity.title).where(Opportunity.notice_id == amended_id)) == (
            "Amended title"
        )
    changed = [key for key in after if after[key] != stamps[key]]
    assert changed == [amended_id]


def test_incremental_runs_start_one_day_before_the_watermark(
    sync_env: dict[str, str], simulator: SamGovSimulator
) -> None:
    first, last = full_range(simulator)
    run_partitions(simulator, service.sync_opportunities(posted_from=first, posted_to=last))

    # When an incremental run is planned on the day after
    run_id = service.sync_opportunities(today=last + dt.timedelta(days=1))

    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        assert (run.mode, run.posted_from, run.posted_to) == (
            "incremental",
            last - dt.timedelta(days=1),
            last + dt.timedelta(days=1),
        )
        assert session.scalar(select(func.count()).where(SyncPartition.run_id == run_id)) == 1


def test_a_duplicate_delivery_of_the_planning_message_plans_nothing_more(sync_env: dict[str, str]) -> None:
    first = service.sync_opportunities(
        posted_from=dt.date(2026, 1, 1), posted_to=dt.date(2026, 3, 1), message_id="m-1"
    )
    again = service.sync_opportunities(
        posted_from=dt.date(2026, 1, 1), posted_to=dt.date(2026, 3, 1), message_id="m-1"
    )
    assert first == again
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 1
        partition_messages = session.scalar(
            select(func.count()).where(OutboxEntry.actor == "sync_opportunity_partition")
        )
    assert partition_messages == 2


def test_a_requeued_dead_partition_reopens_its_run(
    sync_env: dict[str, str], simulator: SamGovSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.sync.client import DATE_FORMAT, SamGovUnavailable
    from app.testing.samgov_server import Fault

    # Given a run of two windows whose first one failed for good (here nothing retries: the failure is final)
    monkeypatch.setenv("SYNC_PARTITION_DAYS", "60")
    reset_settings()
    first, last = full_range(simulator)
    simulator.script(Fault.error(503), times=100, when={"postedFrom": first.strftime(DATE_FORMAT)})
    run_id = service.sync_opportunities(posted_from=first, posted_to=last)
    second = first + dt.timedelta(days=60)
    with samgov_client(simulator) as client:
        with pytest.raises(SamGovUnavailable):
            service.sync_opportunity_partition(
                sync_run_id=run_id, posted_from=first, posted_to=second - dt.timedelta(days=1), client=client
            )
        service.sync_opportunity_partition(
            sync_run_id=run_id, posted_from=second, posted_to=last, client=client
        )
    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None and (run.status, run.partitions_failed) == ("failed", 1)
        assert session.scalar(select(func.count()).where(OutboxEntry.actor == "send_admin_alert")) == 1

    # When its dead letter is requeued (a new message id) after SAM.gov recovered
    simulator.clear_faults()
    with samgov_client(simulator) as client:
        counts, duplicate = (
            service.sync_opportunity_partition(
                sync_run_id=run_id,
                posted_from=first,
                posted_to=second - dt.timedelta(days=1),
                client=client,
                message_id="requeued-copy",
            )
            for _delivery in range(2)
        )

    # Then the partition ran, the run is whole again, and a second delivery of that copy did nothing
    assert counts is not None and counts.inserted > 0 and duplicate is None
    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        assert (run.status, run.partitions_done, run.partitions_failed) == ("succeeded", 2, 0)
    assert set(stored_ids()) == set(simulator.dataset.valid_ids(first, last))
