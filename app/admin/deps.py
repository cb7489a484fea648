"""FastAPI dependencies shared by the routers: the caller (and whether it may write), a database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from app import dead_letters
from app.admin import queries
from app.admin.auth import Principal, principal_of, require_write
from app.db.session import session_scope


def get_principal(request: Request) -> Principal:
    return principal_of(request)


def get_writer(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The caller, if allowed to write: checked before the body is even validated."""
    require_write(request, principal)
    return principal


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


Viewer = Annotated[Principal, Depends(get_principal)]
Writer = Annotated[Principal, Depends(get_writer)]
DbSession = Annotated[Session, Depends(get_session)]


def job_query(
    message_id: str | None = None,
    queue: str | None = None,
    actor: str | None = None,
    status: str | None = None,
    correlation_id: str | None = None,
    q: Annotated[str | None, Query(description="substring of the arguments (JSON text)")] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
) -> queries.JobQuery:
    """The job search of the page and of the API alike; empty form fields mean "any"."""
    return queries.JobQuery(
        message_id=message_id or None, queue=queue or None, actor=actor or None, status=status or None,
        correlation_id=correlation_id or None, text=q or None, limit=limit,
    )  # fmt: skip


JobSearch = Annotated[queries.JobQuery, Depends(job_query)]


def dead_letter_filter(
    queue: str | None = None,
    actor: str | None = None,
    status: str = "dead",
    fingerprint: str | None = None,
    exception_type: str | None = None,
) -> dead_letters.DeadLetterFilter:
    """Query parameters to a filter; ``status=all`` (or empty) does not filter by status."""
    return dead_letters.DeadLetterFilter(
        queue=queue or None,
        actor=actor or None,
        fingerprint=fingerprint or None,
        exception_type=exception_type or None,
        status="" if status in ("", "all") else status,
    )


#: The dead-letter filter of the page and of the API alike.
DeadLetterSearch = Annotated[dead_letters.DeadLetterFilter, Depends(dead_letter_filter)]
