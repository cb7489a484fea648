"""processed attachments deduplicated by sha256 (issue: documents, attachments)

``attachments`` holds one row per distinct file (its sha256 is unique): type, size, page count, where the
file and its extracted text are under STORAGE_DIR, and whether it could be processed. ``attachment_notices``
links it to every notice that references it, so a file shared by many notices is downloaded and read once.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=500), nullable=True),
        sa.Column("text_path", sa.String(length=500), nullable=True),
        sa.Column("text_chars", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("sha256", name=op.f("uq_attachments_sha256")),
    )
    op.create_table(
        "attachment_notices",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("attachment_id", _ID, nullable=False),
        sa.Column("notice_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", app.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.id"],
            name=op.f("fk_attachment_notices_attachment_id_attachments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment_notices")),
        sa.UniqueConstraint("notice_id", "attachment_id", name="uq_attachment_notices_notice_attachment"),
    )
    with op.batch_alter_table("attachment_notices") as batch:
        batch.create_index(batch.f("ix_attachment_notices_attachment_id"), ["attachment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attachment_notices") as batch:
        batch.drop_index(batch.f("ix_attachment_notices_attachment_id"))
    op.drop_table("attachment_notices")
    op.drop_table("attachments")
