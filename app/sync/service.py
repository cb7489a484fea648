"""The opportunities sync: what ``sync_opportunities`` and ``sync_opportunity_partition`` call.

``sync_opportunities`` only plans: it creates the run, its partitions and their messages (:mod:`app.sync.runs`)
and returns. Each partition walks its date window page by page through the SAM.gov client, storing every page
in its own transaction (:mod:`app.sync.upsert`) and remembering where the walk stands, so that an attempt that
stops half-way (429, SAM.gov down, a worker restart) resumes at the next page instead of losing or re-reading
the pages stored. The partition then reports its terminal state to the run (the fan-in); a failure reports
only when no retry will follow (:mod:`app.sync.attempts`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from app import correlation, metrics
from app.constants import SYNC_QUEUE
from app.db.session import session_scope
from app.sync import runs
from app.sync.attempts import is_final_failure
from app.sync.prefetch import prefetched
from app.sync.upsert import Counts, upsert_opportunities

if TYPE_CHECKING:
    from app.sync.client import SamGovClient

logger = logging.getLogger(__name__)

#: Extra walks of a partition whose walk ended with fewer notices than SAM.gov announced (posted meanwhile).
REWALKS = 1


def sync_opportunities(
    *,
    full: bool = False,
    posted_from: dt.date | None = None,
    posted_to: dt.date | None = None,
    message_id: str | None = None,
    today: dt.date | None = None,
) -> int:
    """Plan a run (incremental from the watermark, a range, or ``full``) and send its partitions; its id."""
    from app.settings import get_settings

    settings = get_settings()
    run = runs.create_run(
        message_id=message_id,
        correlation_id=correlation.current() or correlation.new_id(),
        full=full,
        posted_from=posted_from,
        posted_to=posted_to,
        window_days=settings.sync_partition_days,
        full_days=settings.sync_full_days,
        today=today or dt.datetime.now(dt.UTC).date(),
    )
    runs.publish_outbox()
    logger.info(
        "sync run planned",
        extra={
            "action": "sync_run_planned",
            "run_id": run.id,
            "mode": run.mode,
            "posted_from": str(run.posted_from),
            "posted_to": str(run.posted_to),
            "partitions": run.partitions_total,
        },
    )
    return run.id


def sync_opportunity_partition(
    *,
    sync_run_id: int,
    posted_from: dt.date,
    posted_to: dt.date,
    client: SamGovClient | None = None,
    message_id: str | None = None,
) -> Counts | None:
    """Fetch and store one window; report it to the run. None when the partition was already terminal.

    ``message_id`` is the partition message's (a requeued dead letter carries a new one: see
    :func:`app.sync.runs.start_partition`)."""
    from app.settings import get_settings
    from app.sync.client import SamGovClient, redact
    from app.sync.paging import PageCursor

    settings = get_settings()
    part = runs.start_partition(sync_run_id, posted_from, message_id)
    if part is None:
        logger.info(
            "sync partition already finished; duplicate delivery ignored", extra={"run_id": sync_run_id}
        )
        return None
    start = (
        PageCursor(offset=part.resume_offset, mode=part.resume_mode)  # type: ignore[arg-type]
        if part.resume_offset is not None and part.resume_mode is not None
        else None
    )
    # The process's shared client: its connections stay open from one partition to the next (a client of its
    # own per partition paid a TLS context, ~35 ms of CPU, and new connections each time).
    active = client or SamGovClient.shared()
    total = Counts()
    try:
        for walk in range(1 + REWALKS):
            shortfall = 0
            pages = active.iter_opportunity_pages(
                posted_from=posted_from, posted_to=posted_to, purpose="scheduled", start=start
            )
            for page in prefetched(pages):
                with session_scope() as session:
                    counts = upsert_opportunities(session.connection(), page.records, run_id=sync_run_id)
                    runs.record_page(
                        session, part.id, counts, requests=page.requests_spent, resume=page.next_cursor
                    )
                total = total + counts
                shortfall = page.shortfall
                metrics.SYNC_OPERATIONS.labels(SYNC_QUEUE, "opportunities_page", "succeeded").inc()
            if not shortfall or start is not None:
                # A resumed walk never saw the pages before its cursor, so its shortfall says nothing.
                break
            # Notices posted while paging are listed first, before pages already read: walk again from the top
            # (what was stored costs a SELECT, no write) to pick them up.
            logger.warning(
                "sync partition walk ended short; walking it again",
                extra={"run_id": sync_run_id, "partition_id": part.id, "shortfall": shortfall, "walk": walk},
            )
            start = None
    except BaseException as exc:
        error = redact(f"{type(exc).__name__}: {exc}")
        metrics.SYNC_OPERATIONS.labels(SYNC_QUEUE, "opportunities_page", "failed").inc()
        if is_final_failure(exc):
            _report(
                runs.finish_partition(
                    sync_run_id,
                    part.id,
                    succeeded=False,
                    error=error,
                    min_success_pct=settings.sync_min_success_pct,
                )
            )
            logger.error(
                "sync partition failed for good", extra={"run_id": sync_run_id, "partition_id": part.id}
            )
        else:
            runs.note_error(part.id, error)
        raise
    _report(
        runs.finish_partition(
            sync_run_id, part.id, succeeded=True, min_success_pct=settings.sync_min_success_pct
        )
    )
    logger.info(
        "sync partition stored",
        extra={"action": "sync_partition_done", "run_id": sync_run_id, **total.as_dict()},
    )
    return total


def _report(closed: runs.Closed | None) -> None:
    if closed is None:
        return
    runs.publish_outbox()
    metrics.SYNC_OPERATIONS.labels(SYNC_QUEUE, "opportunities_run", closed.status).inc()
    log = logger.error if closed.status == "failed" else logger.info
    log(
        "sync run closed",
        extra={
            "action": "sync_run_closed",
            "run_id": closed.run_id,
            "status": closed.status,
            "partitions_succeeded": closed.succeeded,
            "partitions": closed.total,
        },
    )
