"""Job history (``job_runs``), written in batches by a background thread, off the hot path.

Actors never wait for the database here: events go into an in-memory queue and a writer thread upserts them
every ``interval`` seconds (or sooner when ``batch`` events are waiting), coalescing events of the same message.
History is best effort: a SIGKILLed process loses its last unflushed batch; if the database is down the batch
is dropped with a warning rather than blocking the workers.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from app.db.models import JobRun
from app.db.session import get_engine

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
    """Batches by time: the thread wakes every ``interval`` seconds and writes what has accumulated.

    Waking on every event instead made hundreds of tiny transactions a second and took the GIL from the job
    threads at each wake-up.
    """

    def __init__(self, *, interval: float = 0.5, batch: int = 2000) -> None:
        self.interval = interval
        self.batch = batch
        self._events: queue.SimpleQueue[JobEvent] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def record(self, event: JobEvent) -> None:
        self._events.put(event)

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="job-history", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Flush what is queued and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join(timeout)
        self.flush()

    def flush(self) -> int:
        """Write everything queued now (also used by tests and at shutdown)."""
        written = 0
        while batch := self._drain():
            written += self._write(batch)
        return written

    def _drain(self) -> list[JobEvent]:
        pending: list[JobEvent] = []
        while len(pending) < self.batch:
            try:
                pending.append(self._events.get_nowait())
            except queue.Empty:
                break
        return pending

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.flush()

    def _write(self, events: list[JobEvent]) -> int:
        rows = _coalesce(events)
        if not rows:
            return 0
        try:
            engine = get_engine()
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    _copy_upsert(connection.connection.driver_connection, rows)
                else:
                    connection.execute(_upsert_statement(engine.dialect.name), rows)
        except SQLAlchemyError:
            logger.warning("job history batch dropped: database unavailable", extra={"rows": len(rows)})
            return 0
        return len(rows)


_COLUMNS = tuple(JobEvent.__dataclass_fields__)


def _coalesce(events: list[JobEvent]) -> list[dict[str, Any]]:
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
