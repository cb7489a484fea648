"""The alert a failed sync run sends to ADMIN_EMAILS, through the email queue (``send_admin_alert``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import enqueue
from app.db.models import SyncPartition, SyncRun

if TYPE_CHECKING:
    from app.sync.runs import Closed

#: Failed partitions listed in the alert's text; the admin page has them all.
LISTED = 20


def alert_job(run: SyncRun, closed: Closed) -> enqueue.PreparedJob | None:
    """The alert message of a run that closed as failed; None when no ADMIN_EMAILS is configured.

    Its key names the run and how many times it was retried, so that a retry that fails again alerts again,
    while a redelivered closing step cannot alert twice.
    """
    from app.settings import get_settings

    settings = get_settings()
    if not settings.admin_email_list:
        return None
    session = Session.object_session(run)
    assert session is not None
    failed = session.execute(
        select(SyncPartition.posted_from, SyncPartition.posted_to, SyncPartition.error)
        .where(SyncPartition.run_id == run.id, SyncPartition.status == "failed")
        .order_by(SyncPartition.posted_from)
        .limit(LISTED)
    ).all()
    lines = [
        f"Sync run {run.id} ({run.mode}, {run.posted_from} .. {run.posted_to}) failed: "
        f"{closed.succeeded} of {closed.total} partitions succeeded, under the "
        f"{settings.sync_min_success_pct} % the run needs.",
        "",
        "Failed partitions:",
        *(
            f"- {first} .. {last}: {(error or '').splitlines()[0][:300] if error else ''}"
            for first, last, error in failed
        ),
        "",
        f"Retry them alone with `jobs sync retry {run.id}` or from {settings.public_base_url}/admin/sync.",
    ]
    retries = int(run.params.get("retries", 0))
    return enqueue.job(
        "send_admin_alert",
        correlation_id=run.correlation_id,
        key=f"sync-run-failed:{run.id}:{retries}",
        subject=f"Sync run {run.id} failed ({closed.succeeded}/{closed.total} partitions)",
        text="\n".join(lines),
    )
