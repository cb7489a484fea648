"""schedule_runs and schedule state for the scheduler sidecar (issue: scheduler)

``schedule_runs`` gains what operators and the leader need to know of each fire (why it was skipped or failed,
when it was enqueued, by which replica, and whether an operator asked for it); ``schedule_state`` holds the
paused flag of each schedule, so a pause holds across restarts and replicas.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedule_runs") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("enqueued_at", app.db.types.UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replica", sa.String(128), nullable=True))
        batch.add_column(sa.Column("manual", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_schedule_runs_name_manual_fire_time", ["name", "manual", "fire_time"])
    op.create_table(
        "schedule_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=True),
        sa.Column("changed_at", app.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("resumed_at", app.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedule_state")),
    )


def downgrade() -> None:
    op.drop_table("schedule_state")
    with op.batch_alter_table("schedule_runs") as batch:
        batch.drop_index("ix_schedule_runs_name_manual_fire_time")
        batch.drop_column("manual")
        batch.drop_column("replica")
        batch.drop_column("enqueued_at")
        batch.drop_column("reason")
