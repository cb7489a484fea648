"""Argument schemas of the ``sync`` queue's actors (docs/sync.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import Field, PositiveInt, model_validator

from app.constants import SYNC_QUEUE
from app.jobs.spec import JobArgs, JobSpec

#: A Unique Entity ID as SAM.gov spells it.
Uei = Annotated[str, Field(pattern=r"^[A-Z0-9]{12}$")]


class SyncOpportunitiesArgs(JobArgs):
    """Incremental from the watermark by default; a range (``posted_to`` defaults to today); or ``full``."""

    full: bool = False
    posted_from: dt.date | None = None
    posted_to: dt.date | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        if self.full and self.posted_from is not None:
            raise ValueError("full and posted_from exclude each other")
        if self.posted_from and self.posted_to and self.posted_to < self.posted_from:
            raise ValueError("posted_to is before posted_from")
        return self


class SyncOpportunityPartitionArgs(JobArgs):
    sync_run_id: PositiveInt
    posted_from: dt.date
    posted_to: dt.date


class SyncEntitiesArgs(JobArgs):
    """The UEIs to refresh; none: every awardee of a stored notice and every UEI a user tracks."""

    ueis: tuple[Uei, ...] | None = Field(default=None, max_length=1000)


class RefreshAnalyticsArgs(JobArgs):
    pass


class CleanupDataArgs(JobArgs):
    """Retention comes from the ``RETENTION_*_DAYS`` settings, not from the message."""


SYNC_JOBS = (
    JobSpec("sync_opportunities", SYNC_QUEUE, SyncOpportunitiesArgs, time_limit_ms=5 * 60_000),
    JobSpec(
        "sync_opportunity_partition", SYNC_QUEUE, SyncOpportunityPartitionArgs, time_limit_ms=30 * 60_000
    ),
    JobSpec("sync_entities", SYNC_QUEUE, SyncEntitiesArgs, time_limit_ms=30 * 60_000),
    JobSpec("refresh_analytics", SYNC_QUEUE, RefreshAnalyticsArgs, time_limit_ms=10 * 60_000),
    JobSpec("cleanup_data", SYNC_QUEUE, CleanupDataArgs, time_limit_ms=30 * 60_000),
)
