"""The ``jobs`` command: every process of the platform and the operators' tools.

Each subcommand reads settings once and fails with one line naming a bad variable (exit code 2).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from app.admin.commands import sessions as admin_sessions
from app.constants import QUEUES
from app.errors import JobError, SettingsError
from app.scheduler.cli import schedules
from app.scheduler.process import scheduler_command
from app.settings import Settings, get_settings
from app.sync.cli import sync

F = TypeVar("F", bound=Callable[..., Any])


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as err:
        click.echo(f"jobs: {err}", err=True)
        sys.exit(2)


def _operator() -> str:
    return f"cli:{os.environ.get('JOBS_OPERATOR') or getpass.getuser()}"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def main() -> None:
    """Background-job platform: workers, the outbox relay, admin, and operator tools."""


# ------------------------------------------------------------------------------------------------ processes


@main.command()
@click.argument("queue", type=click.Choice(QUEUES))
@click.option("--processes", "-p", type=click.IntRange(1, 64), help="Worker processes (default per queue).")
@click.option("--threads", "-t", type=click.IntRange(1, 256), help="Threads per process (default per queue).")
@click.option("--shutdown-timeout", type=click.IntRange(1), help="Seconds to finish running jobs on SIGTERM.")
@click.option("--http-port", type=click.IntRange(0, 65535), help="/metrics and /health port; 0 turns it off.")
def worker(
    queue: str,
    processes: int | None,
    threads: int | None,
    shutdown_timeout: int | None,
    http_port: int | None,
) -> None:
    """Run the worker group of QUEUE (imports only that queue's actors)."""
    from app.worker_runner import WorkerGroup, run

    settings = _settings()
    if queue == "sync":
        from app.sync.client import require_key

        try:  # the real SAM.gov without a key would fail every job: refuse to start instead
            require_key(settings.sam_gov_base_url, settings.sam_gov_api_key)
        except SettingsError as err:
            click.echo(f"jobs: {err}", err=True)
            sys.exit(2)
    group = WorkerGroup.for_queue(
        queue,
        processes=processes,
        threads=threads,
        shutdown_timeout_s=shutdown_timeout or settings.worker_shutdown_timeout_s,
        http_port=http_port if http_port is not None else settings.worker_http_port,
    )
    click.echo(
        f"worker {queue}: {group.processes} process(es) x {group.threads} thread(s)"
        + (f", metrics on :{group.http_port}/metrics" if group.http_port else ""),
        err=True,
    )
    sys.exit(run(group, multiproc_dir=settings.prometheus_multiproc_dir))


@main.group()
def health() -> None:
    """Health checks with exit codes, for Kubernetes probes."""


@health.command("worker")
@click.argument("queue", type=click.Choice(QUEUES))
def health_worker(queue: str) -> None:
    """Exit 0 when a worker of QUEUE on this host has a live heartbeat, else 1."""
    import redis

    from app.worker_runner import health_ok

    _settings()
    try:
        healthy = health_ok(queue)
    except redis.RedisError as err:
        click.echo(f"unhealthy: Redis unreachable ({type(err).__name__})", err=True)
        sys.exit(1)
    click.echo("healthy" if healthy else f"unhealthy: no live {queue} worker heartbeat on this host")
    sys.exit(0 if healthy else 1)


@main.command()
def migrate() -> None:
    """Bring the database to the latest schema (idempotent)."""
    from app.db import migrate as migrations

    migrations.upgrade(_settings().database_url)
    click.echo("database is at the latest revision")


@main.group(invoke_without_command=True)
@click.option(
    "--host", default=None, help="Bind address (default 0.0.0.0 with a password set, else 127.0.0.1)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: ADMIN_PORT.")
@click.pass_context
def admin(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the admin web view, /health, /health/ready and /metrics (or: jobs admin sessions revoke)."""
    if ctx.invoked_subcommand is not None:
        return
    from app.admin.server import serve

    settings = _settings()
    protected = settings.admin_password is not None or settings.admin_viewer_password is not None
    try:
        serve(host=host or ("0.0.0.0" if protected else "127.0.0.1"), port=port or settings.admin_port)
    except SettingsError as err:
        click.echo(f"jobs: {err}", err=True)
        sys.exit(2)


@main.command()
@click.option("--once", is_flag=True, help="Publish what is pending and exit.")
@click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds between polls.")
def relay(once: bool, interval: float) -> None:
    """Publish outbox entries committed by the web app (enqueue(..., session=...))."""
    from app.outbox import run_relay

    _settings()
    run_relay(once=once, interval=interval)


@main.command()
@click.option("--users", type=click.IntRange(0), default=50, show_default=True, help="Demo users when empty.")
def dev(users: int) -> None:
    """Every process of the platform in one terminal, on the embedded defaults, with demo data."""
    from app.dev import run_dev

    _settings()  # before any process starts: a setting that cannot work stops them all with one line
    sys.exit(run_dev(demo_users=users))


# ------------------------------------------------------------------------------------------------ operators


@main.group()
def dlq() -> None:
    """Inspect and repair the dead-letter archive."""


def _filter_options(func: F) -> F:
    for option in reversed(
        [
            click.option("--queue", type=click.Choice((*QUEUES, "test")), help="Only this queue."),
            click.option("--actor", help="Only this actor."),
            click.option("--fingerprint", help="Only this failure group."),
            click.option("--exception-type", help="Only this exception type."),
        ]
    ):
        func = option(func)
    return func


def _where(ids: tuple[int, ...] = (), status: str = "dead", **filters: Any) -> Any:
    from app.dead_letters import DeadLetterFilter

    return DeadLetterFilter(ids=ids, status=status, **filters)


@dlq.command("list")
@_filter_options
@click.option(
    "--status", type=click.Choice(["dead", "requeued", "discarded"]), default="dead", show_default=True
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dlq_list(status: str, limit: int, as_json: bool, **filters: Any) -> None:
    """List dead letters, newest first."""
    from app.db.session import session_scope
    from app.dead_letters import describe, list_dead_letters

    _settings()
    with session_scope() as session:
        rows = list_dead_letters(session, _where(status=status, **filters), limit=limit)
        for row in rows:
            if as_json:
                click.echo(json.dumps(describe(row)))
            else:
                click.echo(
                    f"{row.id:>6}  {row.failed_at:%Y-%m-%d %H:%M:%S}  {row.queue:<9} {row.actor:<28} "
                    f"{row.exception_type}: {row.exception_message[:60]}  (attempts {row.attempts}, {row.reason})"
                )
        if not rows and not as_json:
            click.echo("no dead letters match", err=True)


@dlq.command("show")
@click.argument("dead_letter_id", type=int)
def dlq_show(dead_letter_id: int) -> None:
    """Show one dead letter in full, traceback included."""
    from app.db.models import DeadLetter
    from app.db.session import session_scope
    from app.dead_letters import describe

    _settings()
    with session_scope() as session:
        row = session.get(DeadLetter, dead_letter_id)
        if row is None:
            click.echo(f"no dead letter {dead_letter_id}", err=True)
            sys.exit(1)
        data = describe(row)
    trace = data.pop("traceback", None)
    click.echo(json.dumps(data, indent=2))
    if trace:
        click.echo("\n" + trace)


def _repair(action: str, ids: tuple[int, ...], all_matching: bool, filters: dict[str, Any]) -> None:
    from app import dead_letters
    from app.db.session import session_scope

    if not ids and not all_matching:
        raise click.UsageError("name dead-letter ids, or --all (with filters) for every match")
    _settings()
    where = _where(ids=ids, **filters)
    with session_scope() as session:
        try:
            if action == "requeue":
                pairs = dead_letters.requeue(session, where, who=_operator())
                for dead_id, message_id in pairs:
                    click.echo(f"requeued {dead_id} as message {message_id}")
                count = len(pairs)
            else:
                count = dead_letters.discard(session, where, who=_operator())
        except JobError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"{action}d {count} dead letter(s)", err=True)


@dlq.command("requeue")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "all_matching", is_flag=True, help="Every dead letter matching the filters.")
@_filter_options
def dlq_requeue(ids: tuple[int, ...], all_matching: bool, **filters: Any) -> None:
    """Send fresh copies (same idempotency key, retry count reset); audited."""
    _repair("requeue", ids, all_matching, filters)


@dlq.command("discard")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "all_matching", is_flag=True, help="Every dead letter matching the filters.")
@_filter_options
def dlq_discard(ids: tuple[int, ...], all_matching: bool, **filters: Any) -> None:
    """Mark dead letters discarded (kept for the record); audited."""
    _repair("discard", ids, all_matching, filters)


@dlq.command("sync")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Also look at this queue (repeatable); the platform's own queues are always looked at.",
)
def dlq_sync(queues: tuple[str, ...]) -> None:
    """Import messages left in Dramatiq's XQs (database was down when they died) into the archive."""
    from app.constants import QUEUES
    from app.dead_letters import sync_from_xq

    _settings()
    count = sync_from_xq(queues=[*QUEUES, *queues] if queues else None)
    click.echo(f"imported {count} dead letter(s) from the XQ")


@main.command("enqueue")
@click.argument("actor")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE", help="A keyword argument (JSON or text).")
@click.option("--delay", type=float, help="Seconds to wait before it runs.")
@click.option("--idempotency-key", help="Skip if a job with this key already completed.")
def enqueue_command(
    actor: str, args: tuple[str, ...], delay: float | None, idempotency_key: str | None
) -> None:
    """Enqueue one job of ACTOR by name, validated like the helpers do."""
    from app import enqueue

    _settings()
    kwargs: dict[str, Any] = {}
    for item in args:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--arg")
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    try:
        ref = enqueue.send(actor, delay=delay, idempotency_key=idempotency_key, **kwargs)
    except JobError as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps({"message_id": ref.message_id, "queue": ref.queue, "actor": ref.actor}))


@main.group()
def demo() -> None:
    """Realistic demo data."""


@demo.command("seed")
@click.option("--users", type=click.IntRange(1), default=100, show_default=True)
@click.option("--seed", "random_seed", type=int, default=0, show_default=True, help="Random seed.")
def demo_seed(users: int, random_seed: int) -> None:
    """Create demo users, opportunities, saved searches and proposals."""
    from app.db import migrate as migrations
    from app.db.session import session_scope
    from app.demo import seed

    settings = _settings()
    migrations.upgrade(settings.database_url)
    with session_scope() as session:
        summary = seed(session, users=users, seed=random_seed)
    click.echo(str(summary))


main.add_command(schedules)
main.add_command(scheduler_command)
main.add_command(sync)
admin.add_command(admin_sessions)

if __name__ == "__main__":
    main()
