"""First sketch of the ``sync`` queue's argument schemas; not in the catalogue yet.

No actor of the ``sync`` queue exists, so these specs are not registered in ``app.jobs.SPECS``:
the sync issue refines them and registers them together with its actors (until then an enqueue
of one of them raises ``InvalidJob`` at the call site instead of being dead-lettered by a worker).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, PositiveInt

from app.constants import SYNC_QUEUE
from app.jobs.spec import JobArgs, JobSpec


class SyncOpportunitiesArgs(JobArgs):
    mode: Literal["incremental", "full"] = "incremental"
    posted_from: dt.date | None = None
    posted_to: dt.date | None = None


class SyncOpportunityPartitionArgs(JobArgs):
    sync_run_id: PositiveInt
    posted_from: dt.date
    posted_to: dt.date


class SyncEntitiesArgs(JobArgs):
    ueis: tuple[str, ...] | None = Field(default=None, max_length=1000)


class RefreshAnalyticsArgs(JobArgs):
    pass


class CleanupDataArgs(JobArgs):
    older_than_days: int = Field(default=90, ge=1, le=3650)


SYNC_JOBS = (
    JobSpec("sync_opportunities", SYNC_QUEUE, SyncOpportunitiesArgs, time_limit_ms=30 * 60_000),
    JobSpec(
        "sync_opportunity_partition", SYNC_QUEUE, SyncOpportunityPartitionArgs, time_limit_ms=30 * 60_000
    ),
    JobSpec("sync_entities", SYNC_QUEUE, SyncEntitiesArgs, time_limit_ms=30 * 60_000),
    JobSpec("refresh_analytics", SYNC_QUEUE, RefreshAnalyticsArgs, time_limit_ms=10 * 60_000),
    JobSpec("cleanup_data", SYNC_QUEUE, CleanupDataArgs, time_limit_ms=30 * 60_000),
)
