"""The job-history writer on a real SQLite file: coalesced rows, retries while the writes fail, drops after
its attempts, and a graceful stop that writes everything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import migrate
from app.db.models import JobRun
from app.db.session import dispose_engines, session_scope
from app.history import HistoryWriter, JobEvent
from app.settings import reset_settings
from tests.support.helpers import wait_for


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A SQLite database without its tables: every write fails until :func:`_create` migrates it."""
    directory = tmp_path / "db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{directory}/jobs.db")
    reset_settings()
    dispose_engines()
    yield directory
    reset_settings()
    dispose_engines()


def _create(directory: Path) -> None:
    migrate.upgrade(f"sqlite:///{directory}/jobs.db")


def _event(message_id: str, status: str = "running") -> JobEvent:
    return JobEvent(message_id=message_id, queue="q", actor="a", status=status, attempts=1)


def _rows() -> dict[str, str]:
    with session_scope() as session:
        return {row.message_id: row.status for row in session.scalars(select(JobRun))}


def test_a_graceful_stop_writes_every_event_one_row_per_message(database: Path) -> None:
    _create(database)
    writer = HistoryWriter(interval=60)
    writer.record(_event("m1"))
    writer.record(_event("m2"))
    writer.record(_event("m1", "succeeded"))
    writer.stop()
    assert _rows() == {"m1": "succeeded", "m2": "running"}
    assert writer.pending() == 0


def test_a_batch_is_retried_while_the_database_is_unreachable_and_written_once_it_is_back(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a writer that retries a failed batch many times, and a database not migrated yet
    writer = HistoryWriter(interval=0.01, retry_delay=0.01, attempts=1000)
    with caplog.at_level("WARNING", logger="app.timed_flush"):
        writer.record(_event("m1"))
        wait_for(
            lambda: any(r.getMessage() == "flush failed, retrying" for r in caplog.records),
            timeout=10,
            what="a failed attempt",
        )
        # When the database is migrated, then the kept batch is written
        _create(database)
        wait_for(lambda: writer.pending() == 0 and _rows(), timeout=10, what="the row written")
    assert _rows() == {"m1": "running"}
    writer.stop()


def test_a_batch_is_dropped_with_a_warning_after_its_attempts(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a database that stays unreachable
    writer = HistoryWriter(interval=0.01, retry_delay=0.01, attempts=2)
    with caplog.at_level("WARNING", logger="app.history"):
        writer.record(_event("m1"))
        writer.record(_event("m2"))
        # Then the batch is dropped after two attempts, with a warning that counts its events
        wait_for(
            lambda: any(r.getMessage().startswith("job history batch dropped") for r in caplog.records),
            timeout=10,
            what="the drop warning",
        )
    dropped = [r for r in caplog.records if r.getMessage().startswith("job history batch dropped")]
    assert [r.__dict__["events"] for r in dropped] == [2]
    assert writer.pending() == 0
    # And once the database is back, the dropped events stay dropped while new ones are written
    _create(database)
    writer.record(_event("m3"))
    writer.stop()
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 1
    assert _rows() == {"m3": "running"}
