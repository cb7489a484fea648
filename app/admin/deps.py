"""FastAPI dependencies shared by the routers: the caller (and whether it may write), a database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

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
