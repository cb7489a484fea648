"""Job history (``job_runs``), written in batches by a background thread, off the hot path.

Actors never wait for the database here: events go into an in-memory queue and a writer thread upserts them
every ``interval`` seconds (or sooner when ``batch`` events are waiting), coalescing events of the same message.
History is best effort: a SIGKILLed process loses its last unflushed batch; if the database stays down the batch
is dropped with a warning after a few attempts rather than blocking the workers. A graceful stop writes
everything queued.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from app.db.models import JobRun
from app.db.session import get_engine
from app.timed_flush import CLOSE_TIMEOUT_S, TimedFlush

logger = logging.getLogger(__name__)


@dataclass
class JobEvent:
    """One change of a message's state; ``None`` fields do not overwrite what the row already has."""

    message_id: str
    queue: str
    actor: str
    status: str
    attempts: int
    correlation_id: str | None = None
    enqueued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_ms: float | None = None
    error: str | None = None
    args_text: str | None = None


class HistoryWriter:
    """Batches by time (:class:`~app.timed_flush.TimedFlush`): a write every ``interval`` seconds, or as soon as
    ``batch`` events are waiting, one transaction each.

    Waking on every event instead made hundreds of tiny transactions a second and took the GIL from the job
    threads at each wake-up. A batch whose write fails is retried every ``retry_delay`` seconds and dropped with
    a warning after ``attempts`` failures, so that a database outage never holds the workers or their memory.
    """

    def __init__(
        self, *, interval: float = 0.5, batch: int = 2000, attempts: int = 3, retry_delay: float = 1.0
    ) -> None:
        self._batcher: TimedFlush[JobEvent] = TimedFlush(
            self._write,
            interval=interval,
            name="job-history",
            max_batch=batch,
            max_attempts=attempts,
            retry_delay=retry_delay,
            on_drop=_warn_dropped,
        )

    def record(self, event: JobEvent) -> None:
        self._batcher.submit(event)

    def pending(self) -> int:
        """Events recorded and not written yet."""
        return self._batcher.pending()

    def stop(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is queued and stop the thread (a graceful worker stop); a later event starts it again."""
        self._batcher.close(timeout)

    def flush(self) -> int:
        """Write everything queued now from this thread; returns how many events were written (tests, tools).

        Best effort like the thread: a failed write is logged, not raised (and kept for a retry or dropped).
        """
        try:
            return self._batcher.flush_now()
        except SQLAlchemyError:
            logger.warning("job history batch not written: database unavailable", exc_info=True)
            return 0

    def _write(self, events: Sequence[JobEvent]) -> None:
        rows = _coalesce(events)
        engine = get_engine()
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                _copy_upsert(connection.connection.driver_connection, rows)
            else:
                connection.execute(_upsert_statement(engine.dialect.name), rows)


def _warn_dropped(events: Sequence[JobEvent], error: BaseException) -> None:
    logger.warning(
        "job history batch dropped: database unavailable",
        extra={"events": len(events), "error": f"{type(error).__name__}: {error}"},
    )


_COLUMNS = tuple(JobEvent.__dataclass_fields__)


def _coalesce(events: Sequence[JobEvent]) -> list[dict[str, Any]]:
    """One row per message, every column present (None: keep what the table has; see the statement)."""
    merged: dict[str, dict[str, Any]] = {}
    for event in events:
        row = merged.setdefault(event.message_id, dict.fromkeys(_COLUMNS))
        row.update({k: v for k, v in event.__dict__.items() if v is not None})
    for row in merged.values():
        row["args_text"] = row["args_text"] or ""
    return list(merged.values())


#: PostgreSQL: rows are COPied into a per-connection temporary table, then merged in one statement. A
#: parameterised upsert per row (SQLAlchemy or psycopg executemany) cost 45-55 µs of worker CPU per message;
#: COPY costs about 9 (docs/benchmarks.md), and the worker threads compete with this thread for the GIL.
_PG_BATCH_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS job_runs_batch (LIKE job_runs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_PG_COPY = f"COPY job_runs_batch ({', '.join(_COLUMNS)}) FROM STDIN"
_PG_MERGE = (
    f"INSERT INTO job_runs ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} FROM job_runs_batch "
    "ON CONFLICT (message_id) DO UPDATE SET "
    + ", ".join(
        f"{name} = COALESCE({'NULLIF(EXCLUDED.args_text, $$$$)' if name == 'args_text' else f'EXCLUDED.{name}'}, "
        f"job_runs.{name})"
        for name in _COLUMNS
        if name != "message_id"
    )
)


def _copy_upsert(raw_connection: Any, rows: list[dict[str, Any]]) -> None:
    with raw_connection.cursor() as cursor:
        # Best-effort history need not wait for its WAL flush (dead letters and claims still do).
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(_PG_BATCH_TABLE)
        with cursor.copy(_PG_COPY) as copy:
            for row in rows:
                copy.write_row([row[name] for name in _COLUMNS])
        cursor.execute(_PG_MERGE)


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    """One upsert for a whole batch (executemany, SQLite); a NULL (or empty args text) never overwrites a value."""
    table: Table = JobRun.__table__  # type: ignore[assignment]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    updates: dict[str, Any] = {}
    for name in _COLUMNS:
        if name == "message_id":
            continue
        incoming: Any = statement.excluded[name]
        if name == "args_text":
            incoming = func.nullif(incoming, "")
        updates[name] = func.coalesce(incoming, table.c[name])
    return statement.on_conflict_do_update(index_elements=["message_id"], set_=updates)
