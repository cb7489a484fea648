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

#: Largest id any table has (BIGINT); a larger one in a path or body is a 422, not a database error.
MAX_ID = 2**63 - 1
#: Longest text filter (queue, actor, fingerprint, ...): longer than any real value, short of abuse.
MAX_FILTER = 500

#: A text query parameter, bounded.
Text = Annotated[str | None, Query(max_length=MAX_FILTER)]


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
    message_id: Text = None,
    queue: Text = None,
    actor: Text = None,
    status: Text = None,
    correlation_id: Text = None,
    q: Annotated[
        str | None, Query(max_length=MAX_FILTER, description="substring of the arguments (JSON text)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
) -> queries.JobQuery:
    """The job search of the page and of the API alike; empty form fields mean "any"."""
    return queries.JobQuery(
        message_id=message_id or None, queue=queue or None, actor=actor or None, status=status or None,
        correlation_id=correlation_id or None, text=q or None, limit=limit,
    )  # fmt: skip


JobSearch = Annotated[queries.JobQuery, Depends(job_query)]


def dead_letter_filter(
    queue: Text = None,
    actor: Text = None,
    status: Annotated[str, Query(max_length=MAX_FILTER)] = "dead",
    fingerprint: Text = None,
    exception_type: Text = None,
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
