"""processed attachments deduplicated by sha256 (issue: documents, attachments)

Placeholder in the chain so that parallel work can fill each revision on its own; it does nothing yet.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
