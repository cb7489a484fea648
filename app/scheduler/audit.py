"""The audit row of an operator's write on a schedule (pause, resume, run now), from the admin or the CLI.

Same table and shape as the dead-letter writes (``audit_log``: who, ``schedule.<action>``, ``schedule:<name>``),
so one query shows every change an operator made, whichever tool they used.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import AuditEvent


def record(
    session: Session, *, who: str, action: str, name: str, detail: dict[str, object] | None = None
) -> None:
    """Add the row to ``session``; the caller's commit writes it."""
    session.add(
        AuditEvent(who=who, action=f"schedule.{action}", target=f"schedule:{name}", detail=detail or {})
    )
