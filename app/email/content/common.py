"""Loading what every builder needs, with the platform's rule for missing records (permanent)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import User
from app.errors import PermanentError


def get_user(session: Session, user_id: int) -> User:
    """The user; :class:`PermanentError` when they do not exist (retrying will not create them)."""
    user = session.get(User, user_id)
    if user is None:
        raise PermanentError(f"user {user_id} does not exist")
    return user
