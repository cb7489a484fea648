"""sync runs, partitions, rejected records and normalized opportunity/entity columns (issue: sync)

Placeholder in the chain so that parallel work can fill each revision on its own; it does nothing yet.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
