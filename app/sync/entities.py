"""The entities sync: registrations of the UEIs the platform cares about, upserted into ``entities``.

Which UEIs: the ones given, or else every awardee of a stored notice plus every UEI a user tracks
(``tracked_entities``). The client asks SAM.gov for ten at a time (its page size limit) and follows
``nextLink``; each page is stored in its own transaction, by UEI with a payload hash like notices.
An explicit list is on-demand work (it may spend the quota's reserve); the scheduled sync is not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, union

from app import metrics
from app.constants import SYNC_QUEUE
from app.db.models import Opportunity, SyncRun, TrackedEntity
from app.db.session import session_scope
from app.db.types import utcnow
from app.sync.upsert import Counts, upsert_entities

if TYPE_CHECKING:
    from app.sync.client import SamGovClient
    from app.sync.quota import Purpose

logger = logging.getLogger(__name__)


def wanted_ueis() -> list[str]:
    """Awardees of stored notices and users' tracked entities, sorted (so runs page alike)."""
    query: Any = union(
        select(Opportunity.awardee_uei.label("uei")).where(Opportunity.awardee_uei.is_not(None)),
        select(TrackedEntity.uei.label("uei")),
    )
    with session_scope() as session:
        return sorted({row[0] for row in session.execute(query) if row[0]})


def sync_entities(*, ueis: Sequence[str] | None = None, client: SamGovClient | None = None) -> int:
    """Fetch and store the entities; returns the ``sync_runs`` row id (kind ``entities``)."""
    from app.sync.client import SamGovClient, redact

    chosen = list(ueis) if ueis else wanted_ueis()
    purpose: Purpose = "on_demand" if ueis else "scheduled"
    with session_scope() as session:
        run = SyncRun(kind="entities", status="running", mode=purpose, params={"ueis": len(chosen)})
        session.add(run)
        session.flush()
        run_id = run.id
    active = client or SamGovClient.shared()
    total, pages, requests = Counts(), 0, 0
    try:
        for page in active.iter_entity_pages(chosen, purpose=purpose):
            with session_scope() as session:
                total = total + upsert_entities(session.connection(), page.records, run_id=run_id)
            pages += 1
            requests += page.requests_spent
            metrics.SYNC_OPERATIONS.labels(SYNC_QUEUE, "entities_page", "succeeded").inc()
    except BaseException as exc:
        _finish(run_id, "failed", total, pages, requests, redact(f"{type(exc).__name__}: {exc}"))
        metrics.SYNC_OPERATIONS.labels(SYNC_QUEUE, "entities_page", "failed").inc()
        raise
    _finish(run_id, "succeeded", total, pages, requests, None)
    logger.info(
        "entities synced", extra={"action": "sync_entities_done", "run_id": run_id, **total.as_dict()}
    )
    return run_id


def _finish(run_id: int, status: str, total: Counts, pages: int, requests: int, error: str | None) -> None:
    with session_scope() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        run.status, run.finished_at, run.error = status, utcnow(), error
        run.pages, run.records_seen, run.requests_spent = pages, total.fetched, requests
        run.inserted, run.updated, run.unchanged, run.invalid = (
            total.inserted,
            total.updated,
            total.unchanged,
            total.invalid,
        )
