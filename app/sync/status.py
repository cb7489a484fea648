"""What the admin page, its JSON twin and ``jobs sync status`` show: runs, partitions, the quota left.

Read-only, plain functions over the tables and the quota budget, so the three views cannot disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import SyncPartition, SyncRun

logger = logging.getLogger(__name__)

#: Runs a page lists by default.
RECENT = 50


@dataclass(frozen=True)
class QuotaSnapshot:
    """Today's SAM.gov budget (UTC day): requests used, the daily quota, and what each kind of work may spend."""

    daily_quota: int
    used_today: int
    reserve: int
    remaining_scheduled: int
    remaining_on_demand: int


def recent_runs(session: Session, *, kind: str | None = None, limit: int = RECENT) -> list[SyncRun]:
    """Newest first; ``kind`` is opportunities, entities, analytics or cleanup."""
    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if kind:
        query = query.where(SyncRun.kind == kind)
    return list(session.scalars(query))


def partitions(session: Session, run_id: int) -> list[SyncPartition]:
    return list(
        session.scalars(
            select(SyncPartition).where(SyncPartition.run_id == run_id).order_by(SyncPartition.posted_from)
        )
    )


def quota() -> QuotaSnapshot | None:
    """The shared budget read from Redis; None when Redis cannot be reached (the page still shows runs)."""
    from app.sync.quota import QuotaBudget

    try:
        budget = QuotaBudget.from_settings()
        used = budget.used_today()
    except redis.RedisError:
        logger.warning("SAM.gov quota not readable: Redis unreachable")
        return None
    return QuotaSnapshot(
        daily_quota=budget.daily_quota,
        used_today=used,
        reserve=budget.reserve,
        remaining_scheduled=max(budget.limit("scheduled") - used, 0),
        remaining_on_demand=max(budget.limit("on_demand") - used, 0),
    )
