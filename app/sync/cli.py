"""``jobs sync run|status|retry``: start a run, read runs and partitions, retry a run's failed partitions.

``retry`` works on any host that reaches the database and the broker: it reopens the run and sends the failed
partitions' messages itself (through the outbox), audited under ``cli:<user>`` like ``jobs dlq``'s writes.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import click

from app.errors import JobError


@click.group()
def sync() -> None:
    """SAM.gov sync runs: start one, look at them, retry failed partitions."""


@sync.command("run")
@click.option("--from", "posted_from", type=click.DateTime(["%Y-%m-%d"]), help="First posted date (ISO).")
@click.option(
    "--to", "posted_to", type=click.DateTime(["%Y-%m-%d"]), help="Last posted date (default today)."
)
@click.option("--full", is_flag=True, help="The last SYNC_FULL_DAYS days, whatever the watermark.")
def run_command(posted_from: dt.datetime | None, posted_to: dt.datetime | None, full: bool) -> None:
    """Enqueue sync_opportunities: incremental from the watermark unless a range or --full is given."""
    from app import enqueue
    from app.cli import _settings

    _settings()
    try:
        ref = enqueue.sam_sync(
            posted_from=posted_from.date() if posted_from else None,
            posted_to=posted_to.date() if posted_to else None,
            full=full,
        )
    except JobError as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps({"message_id": ref.message_id, "queue": ref.queue, "actor": ref.actor}))


@sync.command("status")
@click.argument("run_id", type=int, required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def status_command(run_id: int | None, limit: int, as_json: bool) -> None:
    """Recent runs and the quota left, or one run with its partitions."""
    from app.cli import _settings
    from app.db.models import SyncRun
    from app.db.session import session_scope
    from app.sync.schemas import SyncPartitionOut, SyncRunOut
    from app.sync.status import partitions, quota, recent_runs

    _settings()
    with session_scope() as session:
        if run_id is not None:
            run = session.get(SyncRun, run_id)
            if run is None:
                click.echo(f"jobs: no sync run {run_id}", err=True)
                sys.exit(1)
            out = SyncRunOut.model_validate(run)
            parts = [SyncPartitionOut.model_validate(p) for p in partitions(session, run_id)]
        else:
            runs = [SyncRunOut.model_validate(r) for r in recent_runs(session, limit=limit)]
    if run_id is not None:
        if as_json:
            detail = {**out.model_dump(mode="json"), "partitions": [p.model_dump(mode="json") for p in parts]}
            click.echo(json.dumps(detail))
            return
        click.echo(
            f"run {out.id} {out.kind} {out.status} {out.posted_from}..{out.posted_to} "
            f"{out.partitions_done}/{out.partitions_total} done, {out.partitions_failed} failed"
        )
        for p in parts:
            click.echo(
                f"  {p.posted_from}..{p.posted_to}  {p.status:<9} attempts={p.attempts} pages={p.pages} "
                f"+{p.inserted} ~{p.updated} ={p.unchanged} !{p.invalid} requests={p.requests_spent}"
                + (f"  {p.error.splitlines()[0][:120]}" if p.error else "")
            )
        return
    snapshot = quota()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "quota": snapshot.__dict__ if snapshot else None,
                    "runs": [r.model_dump(mode="json") for r in runs],
                }
            )
        )
        return
    if snapshot is not None:
        click.echo(
            f"SAM.gov quota: {snapshot.used_today}/{snapshot.daily_quota} used today, "
            f"{snapshot.remaining_scheduled} left for scheduled work, {snapshot.remaining_on_demand} on demand"
        )
    for r in runs:
        window = f"{r.posted_from}..{r.posted_to}" if r.posted_from else "-"
        click.echo(
            f"{r.id:>6} {r.kind:<13} {r.status:<9} {window:<23} "
            f"+{r.inserted} ~{r.updated} ={r.unchanged} !{r.invalid} requests={r.requests_spent}"
        )


@sync.command("retry")
@click.argument("run_id", type=int)
def retry_command(run_id: int) -> None:
    """Send the failed partitions of RUN_ID again, alone; the run closes again when they report."""
    from app.cli import _operator, _settings
    from app.sync.runs import retry_failed

    _settings()
    try:
        ids = retry_failed(run_id, who=_operator())
    except JobError as err:
        click.echo(f"jobs: {err}", err=True)
        sys.exit(1)
    click.echo(f"retried {len(ids)} partition(s) of run {run_id}")
