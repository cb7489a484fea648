"""``jobs schedules list|run|pause|resume``: the operators' hands on the schedule table.

Every command works whether or not a scheduler runs, and on any host that reaches Redis and the database: a
pause or resume is stored where every replica reads it, and a run-now claims and enqueues its fire itself (with
its own key), so it needs no leader. Writes are audited under ``cli:<user>`` like ``jobs dlq``'s.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, NoReturn

import click

from app.errors import JobError

#: Statuses of a fire whose message is on the queue.
SENT = ("manual", "enqueued")
#: Width of the name column of ``list`` (the longest public name is 17 characters).
NAME_WIDTH = 18


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _state_json(item: Any) -> dict[str, Any]:
    from app.scheduler.schemas import ScheduleOut

    return ScheduleOut.model_validate(item).model_dump(mode="json")


def _audit(who: str, action: str, name: str, detail: dict[str, object] | None = None) -> None:
    from app.db.session import session_scope
    from app.scheduler import audit

    with session_scope() as session:
        audit.record(session, who=who, action=action, name=name, detail=detail)


def _refused(err: JobError) -> NoReturn:
    """An unknown schedule, or a refusal such as resuming a disabled one: one line, exit 1."""
    click.echo(f"jobs: {err}", err=True)
    sys.exit(1)


@click.group()
def schedules() -> None:
    """List, pause, resume and fire the schedules of the scheduler sidecar."""


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per schedule and line.")
def list_command(as_json: bool) -> None:
    """Every schedule: state, next and last fire (UTC), lag, last outcome, missed fires."""
    from app.cli import _settings
    from app.scheduler import state

    _settings()
    items = state.schedule_states()
    if as_json:
        for item in items:
            click.echo(json.dumps(_state_json(item)))
        return
    click.echo(
        f"{'NAME':<{NAME_WIDTH}} {'STATE':<8} {'NEXT FIRE':<19}  {'LAST FIRE':<19}  {'LAG':>7}  "
        f"{'OUTCOME':<10} {'MISSED':>6}  ACTOR"
    )
    for item in items:
        flag = "disabled" if not item.enabled else "paused" if item.paused else "active"
        lag = f"{item.last_lag_s:.2f}s" if item.last_lag_s is not None else "-"
        outcome = item.last_outcome or item.last_status or "-"
        next_fire = _when(item.next_fire) if item.enabled and not item.paused else "-"
        click.echo(
            f"{item.name:<{NAME_WIDTH}} {flag:<8} {next_fire:<19}  {_when(item.last_fire):<19}  {lag:>7}  "
            f"{outcome:<10} {item.missed_count:>6}  {item.target_actor}"
        )


@schedules.command("run")
@click.argument("name")
def run_command(name: str) -> None:
    """Fire NAME once now, with its own key (no leader needed); prints the fire as JSON.

    Exits 1 when nothing was enqueued now: the target actor is not in the catalogue yet, or the publish failed
    (then a leading scheduler publishes the fire again inside the schedule's grace time).
    """
    from app.cli import _operator, _settings
    from app.scheduler import state
    from app.scheduler.schemas import FiredOut

    _settings()
    who = _operator()
    try:
        fired = state.run_now(name, by=who)
    except JobError as err:
        _refused(err)
    out = FiredOut.model_validate(fired, from_attributes=True)
    _audit(who, "run", name, {"message_id": out.message_id, "status": out.status, "key": out.key})
    click.echo(out.model_dump_json())
    if out.status not in SENT or out.duplicate:
        # A publish that failed stays a "failed" row, which the leader publishes again inside the grace time.
        why = out.reason or "already claimed"
        click.echo(f"jobs: {name}: nothing enqueued now ({out.status}: {why})", err=True)
        sys.exit(1)


def _set_paused(name: str, paused: bool) -> None:
    from app.cli import _operator, _settings
    from app.scheduler import state

    _settings()
    who = _operator()
    try:
        (state.pause if paused else state.resume)(name, by=who)
    except JobError as err:
        _refused(err)
    _audit(who, "pause" if paused else "resume", name)
    click.echo(f"{name}: {'paused' if paused else 'resumed'}")


@schedules.command("pause")
@click.argument("name")
def pause_command(name: str) -> None:
    """Stop firing NAME on every replica until resumed (persists across restarts)."""
    _set_paused(name, True)


@schedules.command("resume")
@click.argument("name")
def resume_command(name: str) -> None:
    """Fire NAME again from its next scheduled time."""
    _set_paused(name, False)
