"""schedule_runs and schedule state for the scheduler sidecar (issue: scheduler)

Placeholder in the chain so that parallel work can fill each revision on its own; it does nothing yet.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
