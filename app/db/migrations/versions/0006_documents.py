"""documents rows with format, progress and page count (issue: documents)

The ``documents`` table of 0001 knew only the final state of a file; a job now claims its row while it runs,
so the web app can show progress, and a retried attempt takes the same row over (the request id is the key).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("format", sa.String(16), nullable=True))
        batch.add_column(sa.Column("progress", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("page_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("row_count", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("message_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("started_at", app.db.types.UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("updated_at", app.db.types.UtcDateTime(timezone=True), nullable=True))
        batch.create_index("ix_documents_message_id", ["message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_message_id")
        for column in ("updated_at", "started_at", "message_id", "attempts", "row_count", "page_count"):
            batch.drop_column(column)
        batch.drop_column("progress")
        batch.drop_column("format")
