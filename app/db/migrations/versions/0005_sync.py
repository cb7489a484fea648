"""sync runs, partitions, rejected records and normalized opportunity/entity columns (issue: sync)

Adds the sync queue's bookkeeping (partition fan-in on ``sync_runs``, ``sync_partitions``,
``sync_rejected_records``), the normalized opportunity columns the upsert fills, the entities' sync time, the
users' tracked entities, and the aggregate tables ``refresh_analytics`` rebuilds.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def _utc() -> app.db.types.UtcDateTime:
    return app.db.types.UtcDateTime(timezone=True)


def _counts() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.Integer(), nullable=False, server_default="0")
        for name in ("pages", "fetched", "inserted", "updated", "unchanged", "invalid", "requests_spent")
    ]


def upgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("correlation_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("posted_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("posted_to", sa.Date(), nullable=True))
        for name in ("partitions_total", "partitions_done", "partitions_failed", "invalid", "requests_spent"):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("alert_sent_at", _utc(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_sync_runs_message_id"), ["message_id"])

    op.create_table(
        "sync_partitions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", BIG_ID, nullable=False),
        sa.Column("posted_from", sa.Date(), nullable=False),
        sa.Column("posted_to", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        *_counts(),
        sa.Column("resume_offset", sa.Integer(), nullable=True),
        sa.Column("resume_mode", sa.String(length=8), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_sync_partitions_run_id_sync_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_partitions")),
        sa.UniqueConstraint("run_id", "posted_from", name="uq_sync_partitions_run_from"),
    )
    with op.batch_alter_table("sync_partitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_partitions_run_id"), ["run_id"], unique=False)

    op.create_table(
        "sync_rejected_records",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", BIG_ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
            name=op.f("fk_sync_rejected_records_run_id_sync_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_rejected_records")),
    )
    with op.batch_alter_table("sync_rejected_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_rejected_records_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_rejected_records_created_at"), ["created_at"], unique=False)

    op.create_table(
        "analytics_counts",
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("notices", sa.Integer(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("award_count", sa.Integer(), nullable=False),
        sa.Column("award_total", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("refreshed_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "key", name=op.f("pk_analytics_counts")),
    )
    op.create_table(
        "analytics_deadlines",
        sa.Column("notice_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("department", sa.String(length=256), nullable=True),
        sa.Column("naics_code", sa.String(length=16), nullable=True),
        sa.Column("set_aside_code", sa.String(length=32), nullable=True),
        sa.Column("response_deadline", _utc(), nullable=False),
        sa.Column("refreshed_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_analytics_deadlines")),
    )
    with op.batch_alter_table("analytics_deadlines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_deadlines_response_deadline"), ["response_deadline"], unique=False
        )

    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agency_names", _json(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("department", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("resource_links", _json(), nullable=False, server_default="[]"))
        batch_op.create_index(batch_op.f("ix_opportunities_department"), ["department"], unique=False)

    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("synced_at", _utc(), nullable=True))

    op.create_table(
        "tracked_entities",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("uei", sa.String(length=12), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracked_entities_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_entities")),
        sa.UniqueConstraint("user_id", "uei", name="uq_tracked_entities_user_uei"),
    )
    with op.batch_alter_table("tracked_entities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracked_entities_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tracked_entities_uei"), ["uei"], unique=False)


def downgrade() -> None:
    op.drop_table("tracked_entities")
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.drop_column("synced_at")
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opportunities_department"))
        batch_op.drop_column("resource_links")
        batch_op.drop_column("department")
        batch_op.drop_column("agency_names")
    op.drop_table("analytics_deadlines")
    op.drop_table("analytics_counts")
    op.drop_table("sync_rejected_records")
    op.drop_table("sync_partitions")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_sync_runs_message_id"), type_="unique")
        for name in (
            "alert_sent_at",
            "requests_spent",
            "invalid",
            "partitions_failed",
            "partitions_done",
            "partitions_total",
            "posted_to",
            "posted_from",
            "correlation_id",
            "message_id",
            "mode",
        ):
            batch_op.drop_column(name)
