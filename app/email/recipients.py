"""Who an email goes to, and whether they may get it at all.

A recipient who cannot or must not be emailed is *skipped* (recorded in ``email_log`` with the reason), which is
an outcome, not a failure: retrying would not change it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db.models import User
from app.email.content.common import UserRecord

NO_ADDRESS = "no_address"
DEACTIVATED = "deactivated"
OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class Recipient:
    """What the email code needs of a user, detached from the ORM session."""

    user_id: int
    email: str | None
    name: str
    timezone: str
    is_active: bool
    opt_outs: frozenset[str]

    @classmethod
    def of(cls, user: User | UserRecord) -> Recipient:
        return cls(
            user_id=user.id,
            email=(user.email or "").strip() or None,
            name=user.name or "",
            timezone=user.timezone or "UTC",
            is_active=bool(user.is_active),
            opt_outs=frozenset(str(kind) for kind in user.email_opt_outs or ()),
        )

    def skip_reason(self, kind: str) -> str | None:
        """Why this user must not get an email of ``kind``; None when they may."""
        if not self.is_active:
            return DEACTIVATED
        if self.email is None:
            return NO_ADDRESS
        if kind in self.opt_outs:
            return OPTED_OUT
        return None
