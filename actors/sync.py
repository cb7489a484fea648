"""Actors of the ``sync`` queue: each validates its arguments (``job_actor``) and calls one service function."""

from __future__ import annotations

import app.broker  # noqa: F401  (binds actors to the platform broker before any is declared)
from app.actor import current_message_id, job_actor
from app.jobs.sync import (
    CleanupDataArgs,
    RefreshAnalyticsArgs,
    SyncEntitiesArgs,
    SyncOpportunitiesArgs,
    SyncOpportunityPartitionArgs,
)
from app.settings import get_settings
from app.sync import analytics, cleanup, entities, service

#: SYNC_MAX_RETRIES / SYNC_MIN_BACKOFF_MS override the sync queue's retry policy for every sync actor.
RETRIES = {
    "max_retries": get_settings().sync_max_retries,
    "min_backoff": get_settings().sync_min_backoff_ms,
}


@job_actor("sync_opportunities", **RETRIES)
def sync_opportunities(args: SyncOpportunitiesArgs) -> None:
    service.sync_opportunities(
        full=args.full,
        posted_from=args.posted_from,
        posted_to=args.posted_to,
        message_id=current_message_id(),
    )


@job_actor("sync_opportunity_partition", **RETRIES)
def sync_opportunity_partition(args: SyncOpportunityPartitionArgs) -> None:
    service.sync_opportunity_partition(
        sync_run_id=args.sync_run_id,
        posted_from=args.posted_from,
        posted_to=args.posted_to,
        message_id=current_message_id(),
    )


@job_actor("sync_entities", **RETRIES)
def sync_entities(args: SyncEntitiesArgs) -> None:
    entities.sync_entities(ueis=args.ueis)


@job_actor("refresh_analytics", **RETRIES)
def refresh_analytics(args: RefreshAnalyticsArgs) -> None:
    analytics.refresh_analytics()


@job_actor("cleanup_data", **RETRIES)
def cleanup_data(args: CleanupDataArgs) -> None:
    cleanup.cleanup_data()
