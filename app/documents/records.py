"""The ``documents`` rows: one per request id, claimed by each attempt, finished once the file is in place.

Every statement here is a single-row upsert or update on the primary key, so a retried attempt, a redelivery
after a crash, or two attempts racing on the same request id all end up on the one row: there is no way to
write a second one. The web app reads the same rows through :func:`load` (see :mod:`app.documents`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.db.models import Document
from app.db.session import autocommit
from app.db.types import utcnow

_TABLE: Table = Document.__table__  # type: ignore[assignment]

#: Longest error text kept on the row: the summary the web app shows, not a traceback.
MAX_ERROR = 2000

RUNNING, RETRYING, READY, FAILED = "running", "retrying", "ready", "failed"


@dataclass(frozen=True)
class DocumentStatus:
    """What the web app may show of a request: its state, progress and, once ready, the file's facts."""

    request_id: str
    kind: str
    format: str | None
    status: str
    progress: int
    user_id: int | None
    #: Relative to ``STORAGE_DIR``; set from the first attempt on, the file exists only once ``ready``.
    path: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    page_count: int | None
    row_count: int | None
    error: str | None
    attempts: int
    #: The Dramatiq message of the latest attempt (the admin's jobs page links the two).
    message_id: str | None
    params: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def ready(self) -> bool:
        return self.status == READY


@dataclass(frozen=True)
class Claim:
    """What an attempt writes when it starts."""

    request_id: str
    kind: str
    format: str
    user_id: int | None
    path: str
    params: dict[str, Any]
    message_id: str | None


def load(request_id: str, conn: Connection | None = None) -> DocumentStatus | None:
    """The row of ``request_id``, or None when no attempt has started yet."""
    query = select(*[_TABLE.c[field] for field in _FIELDS]).where(_TABLE.c.request_id == request_id)
    if conn is not None:
        row = conn.execute(query).first()
    else:
        with autocommit() as own:
            row = own.execute(query).first()
    return None if row is None else DocumentStatus(**row._asdict())


def claim(claim: Claim) -> None:
    """Create the row in ``running`` or take it over for a new attempt (attempts + 1, progress and error reset)."""
    now = utcnow()
    fresh = {
        "kind": claim.kind,
        "format": claim.format,
        "user_id": claim.user_id,
        "status": RUNNING,
        "progress": 0,
        "path": claim.path,
        "params": claim.params,
        "message_id": claim.message_id,
        "error": None,
        "started_at": now,
        "updated_at": now,
        "finished_at": None,
    }
    with autocommit() as conn:
        insert = _insert_for(conn).values(request_id=claim.request_id, created_at=now, attempts=1, **fresh)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[_TABLE.c.request_id], set_={**fresh, "attempts": _TABLE.c.attempts + 1}
            )
        )


def set_progress(request_id: str, percent: int) -> None:
    """Record progress of a running attempt; a row already finished (a racing attempt won) is left alone."""
    with autocommit() as conn:
        conn.execute(
            update(_TABLE)
            .where(_TABLE.c.request_id == request_id, _TABLE.c.status == RUNNING)
            .values(progress=percent, updated_at=utcnow())
        )


def mark_ready(
    request_id: str,
    *,
    path: str,
    content_type: str,
    size_bytes: int,
    sha256: str,
    page_count: int | None,
    row_count: int | None,
) -> None:
    """The file is in place under its final name: the row says so, with what a download needs."""
    now = utcnow()
    with autocommit() as conn:
        conn.execute(
            update(_TABLE)
            .where(_TABLE.c.request_id == request_id)
            .values(
                status=READY,
                progress=100,
                path=path,
                content_type=content_type,
                size_bytes=size_bytes,
                sha256=sha256,
                page_count=page_count,
                row_count=row_count,
                error=None,
                updated_at=now,
                finished_at=now,
            )
        )


def mark_failed(request_id: str, error: str, *, final: bool) -> None:
    """Record why an attempt failed: ``failed`` when it will not be retried, ``retrying`` otherwise.

    A row another attempt already finished is not touched: a late failure must not hide a ready file.
    """
    now = utcnow()
    with autocommit() as conn:
        conn.execute(
            update(_TABLE)
            .where(_TABLE.c.request_id == request_id, _TABLE.c.status != READY)
            .values(
                status=FAILED if final else RETRYING,
                error=error[:MAX_ERROR],
                updated_at=now,
                finished_at=now if final else None,
            )
        )


def _insert_for(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(_TABLE)


_FIELDS = tuple(DocumentStatus.__dataclass_fields__)
