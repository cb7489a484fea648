"""Loading what every builder needs, with the platform's rule for missing records (permanent)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from app.db.models import User
from app.errors import PermanentError

_USERS: Table = User.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class UserRecord:
    """The columns of a user the emails read, detached from any session."""

    id: int
    email: str | None
    name: str
    timezone: str
    naics_codes: list[Any]
    keywords: list[Any]
    set_asides: list[Any]
    email_opt_outs: list[Any]
    is_active: bool
    last_reminder_at: dt.datetime | None


# One Core statement built once: loading the user through the ORM identity map cost more CPU than the rest of
# a welcome email's database work together.
USER_BY_ID = select(*(_USERS.c[name] for name in UserRecord.__dataclass_fields__)).where(
    _USERS.c.id == bindparam("user_id")
)


def get_user(connection: Connection, user_id: int) -> UserRecord:
    """The user; :class:`PermanentError` when they do not exist (retrying will not create them)."""
    row = connection.execute(USER_BY_ID, {"user_id": user_id}).first()
    if row is None:
        raise PermanentError(f"user {user_id} does not exist")
    return UserRecord(**row._mapping)
