"""job_runs: three secondary indexes instead of five (every job writes a row; each index costs on that write).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_index("ix_job_runs_queue")
        batch.drop_index("ix_job_runs_status")
        batch.drop_index("ix_job_runs_finished_at")
        batch.create_index("ix_job_runs_queue_finished_at", ["queue", "finished_at"])


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_index("ix_job_runs_queue_finished_at")
        batch.create_index("ix_job_runs_finished_at", ["finished_at"])
        batch.create_index("ix_job_runs_status", ["status"])
        batch.create_index("ix_job_runs_queue", ["queue"])
