"""``refresh_analytics``: the aggregate tables, rebuilt whole from ``opportunities`` in one transaction.

Counts of notices (and of active ones, awards and their total) by NAICS code, agency (department), set-aside
and ISO week posted, in ``analytics_counts``; active notices due in the next weeks in ``analytics_deadlines``.
The rebuild is ``DELETE`` then ``INSERT … SELECT`` inside one transaction, never ``TRUNCATE``: on PostgreSQL
readers keep seeing the previous aggregates (MVCC) until the commit swaps them all at once, and no reader waits
on a lock; concurrent refreshes queue behind a table lock that readers do not conflict with. On SQLite the
week is ``strftime('%Y-W%W')`` (Monday-based, close to but not exactly ISO).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Table, case, delete, func, insert, literal, select, text

from app import metrics
from app.constants import SYNC_QUEUE
from app.db.models import AnalyticsCount, AnalyticsDeadline, Opportunity, SyncRun
from app.db.session import session_scope
from app.db.types import UtcDateTime, utcnow

logger = logging.getLogger(__name__)

COUNTS: Table = AnalyticsCount.__table__  # type: ignore[assignment]
DEADLINES: Table = AnalyticsDeadline.__table__  # type: ignore[assignment]
OPPORTUNITIES: Table = Opportunity.__table__  # type: ignore[assignment]
#: How far ahead ``analytics_deadlines`` looks.
DEADLINE_HORIZON = dt.timedelta(days=30)
#: The key of rows whose dimension is empty (no NAICS code, no set-aside...).
NONE_KEY = "(none)"


def _week(dialect: str) -> Any:
    posted = OPPORTUNITIES.c.posted_date
    if dialect == "postgresql":
        return func.to_char(posted, 'IYYY-"W"IW')
    return func.strftime("%Y-W%W", posted)


def refresh_analytics(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Rebuild every aggregate; returns rows written per dimension. Records a ``sync_runs`` row."""
    moment = now or utcnow()
    at = literal(moment, UtcDateTime())
    written: dict[str, int] = {}
    with session_scope() as session:
        connection = session.connection()
        opp = OPPORTUNITIES.c
        dimensions = {
            "naics": opp.naics_code,
            "agency": opp.department,
            "set_aside": opp.set_aside_code,
            "week": _week(connection.dialect.name),
        }
        if connection.dialect.name == "postgresql":
            # Two refreshes at once would each insert after the other's delete. EXCLUSIVE mode queues writers
            # (a second refresh) and lets plain SELECTs through, so readers are never blocked.
            connection.execute(text("LOCK TABLE analytics_counts, analytics_deadlines IN EXCLUSIVE MODE"))
        connection.execute(delete(COUNTS))
        for name, expression in dimensions.items():
            key = func.coalesce(func.substr(expression, 1, 256), NONE_KEY).label("key")
            query = select(
                literal(name).label("dimension"),
                key,
                func.count().label("notices"),
                func.coalesce(func.sum(case((opp.active, 1), else_=0)), 0).label("active"),
                func.count(opp.award_amount).label("award_count"),
                func.coalesce(func.sum(opp.award_amount), 0).label("award_total"),
                at.label("refreshed_at"),
            ).group_by(key)
            columns = ["dimension", "key", "notices", "active", "award_count", "award_total", "refreshed_at"]
            connection.execute(insert(COUNTS).from_select(columns, query))
        connection.execute(delete(DEADLINES))
        upcoming = select(
            opp.notice_id,
            opp.title,
            opp.department,
            opp.naics_code,
            opp.set_aside_code,
            opp.response_deadline,
            at,
        ).where(
            opp.active.is_(True),
            opp.response_deadline >= literal(moment, UtcDateTime()),
            opp.response_deadline < literal(moment + DEADLINE_HORIZON, UtcDateTime()),
        )
        connection.execute(
            insert(DEADLINES).from_select(
                [
                    "notice_id",
                    "title",
                    "department",
                    "naics_code",
                    "set_aside_code",
                    "response_deadline",
                    "refreshed_at",
                ],
                upcoming,
            )
        )
        # rowcount of INSERT … SELECT is not reliable across drivers: count what is there now.
        written.update(
            (str(dimension), int(n))
            for dimension, n in connection.execute(
                select(COUNTS.c.dimension, func.count()).group_by(COUNTS.c.dimension)
            )
        )
        written["deadlines"] = int(connection.scalar(select(func.count()).select_from(DEADLINES)) or 0)
        session.add(
            SyncRun(
                kind="analytics",
                status="succeeded",
                started_at=moment,
                finished_at=utcnow(),
                params={"rows": written},
            )
        )
    metrics.SYNC_OPERATIONS.labels(SYNC_QUEUE, "analytics", "succeeded").inc()
    logger.info("analytics refreshed", extra={"action": "analytics_refreshed", **written})
    return written
