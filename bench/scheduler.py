"""The scheduler sidecar: fire lag against the scheduled time, and failover after a SIGKILL of the leader.

Two real ``jobs scheduler`` replicas (``tests/support/scheduler.py``'s launcher, tied to this script) run on a
scratch database (PostgreSQL when it answers) and a Redis database of their own, with a ``SCHEDULES_FILE`` that
fires ``daily-reminders`` (its actor exists today) every second with a 5 s grace time and disables the others:

- **fire lag**: for ``--fires`` fires (at least 30), ``schedule_runs.enqueued_at`` minus the fire's scheduled
  time, p50/p99, against the goal p99 <= 1 s and against a **baseline** measured at the same time on the same
  machine: a bare APScheduler 3.x ``BackgroundScheduler`` in this process with a 1 s interval job that only
  reads the clock (its lag is APScheduler's own wake-up jitter, the floor of any engine built on it);
- **failover**: SIGKILL of the lock holder (its lock is not released), then (a) the time until the standby
  holds the lock and (b) until its first fire is enqueued, as ratios of the lock TTL. The standby can take the
  lock only once the dead leader's lease expires, so (a) is at most TTL + the standby's 0.5 s poll, i.e. a
  ratio just at or below 1 (the lease was renewed up to ``SCHEDULER_LOCK_RENEW_S`` before the kill). Also
  counted: fire times doubled and idempotency keys on the queue twice (both must be 0), and fires of the gap
  recorded ``missed`` (older than the grace time) or caught up. A leader killed between its publish and the
  ``enqueued`` mark leaves its last row ``claimed`` with the message on the queue (docs/scheduler.md
  "Guarantees"), so rows and messages can differ by one without anything sent twice;
- **handover**: a fresh replica joins as standby, then SIGTERM to the leader (which deletes its lock): the time
  until the standby holds the lock (it polls every 0.5 s), and the fires around it (none should be missed).

    .venv/bin/python bench/scheduler.py [--fires 40] [--lock-ttl 15]

``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/11``) is flushed at start and at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import drop_schema, migrated_database, worker_env  # noqa: E402
from tests.support.scheduler import SchedulerProcess, every_second, leader_pid, queued_keys  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
#: The schedule that fires every second (its actor, dispatch_daily_reminders, is in the catalogue).
FIRING = "daily-reminders"
#: Grace time of FIRING: fires of a failover gap older than this are recorded missed.
GRACE_S = 5.0
#: The goal of the issue: fire lag p99 at most this many seconds.
TARGET_P99_S = 1.0


@dataclass(frozen=True)
class Fire:
    fire_time: dt.datetime
    enqueued_at: dt.datetime | None
    status: str
    replica: str | None

    @property
    def lag_s(self) -> float | None:
        return (self.enqueued_at - self.fire_time).total_seconds() if self.enqueued_at else None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def fires() -> list[Fire]:
    """Scheduled (not run-now) fires of FIRING, in fire-time order."""
    from sqlalchemy import select

    from app.db.models import ScheduleRun
    from app.db.session import session_scope

    with session_scope() as session:
        rows = session.scalars(
            select(ScheduleRun)
            .where(ScheduleRun.name == FIRING, ScheduleRun.manual.is_(False))
            .order_by(ScheduleRun.fire_time)
        )
        return [Fire(r.fire_time, r.enqueued_at, r.status, r.replica) for r in rows]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def by(process: SchedulerProcess, fire: Fire) -> bool:
    return fire.replica is not None and fire.replica.rsplit(":", 1)[-1] == str(process.pid)


class BareAPScheduler:
    """APScheduler alone, in this process: a 1 s interval job that reads the clock."""

    def __init__(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.starts: list[float] = []
        self.anchor = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
        self.scheduler = BackgroundScheduler(timezone=dt.UTC)
        self.scheduler.add_job(
            lambda: self.starts.append(time.time()),
            "interval",
            seconds=1,
            start_date=self.anchor,
            max_instances=1,
            coalesce=False,
        )
        self.scheduler.start()

    def stop(self) -> list[float]:
        """Lags (start minus its scheduled second) of every run so far."""
        self.scheduler.shutdown(wait=False)
        return [(t - self.anchor.timestamp()) % 1.0 for t in self.starts]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--fires", type=int, default=40, help="fires measured for the lag (>= 30)")
    parser.add_argument("--lock-ttl", type=float, default=15.0, help="SCHEDULER_LOCK_TTL_S of both replicas")
    args = parser.parse_args()
    if args.fires < 30:
        parser.error("--fires must be at least 30")

    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    url, schema = migrated_database()
    os.environ.update({"DATABASE_URL": url, "REDIS_URL": REDIS_URL})
    from app.settings import reset_settings

    reset_settings()  # this process reads the replicas' database from here on
    work = Path(tempfile.mkdtemp(prefix="bench-scheduler-"))
    (work / "schedules.toml").write_text(every_second(FIRING, grace_s=GRACE_S))
    renew_s = args.lock_ttl / 3
    env = {
        **worker_env(url, log_level="INFO"),
        "REDIS_URL": REDIS_URL,
        "SCHEDULES_FILE": str(work / "schedules.toml"),
        "SCHEDULER_LOCK_TTL_S": str(args.lock_ttl),
        "SCHEDULER_LOCK_RENEW_S": str(renew_s),
    }
    print(
        f"2 `jobs scheduler` replicas, {FIRING} every 1 s (grace {GRACE_S:g} s), lock TTL {args.lock_ttl:g} s "
        f"renewed every {renew_s:g} s, Redis {REDIS_URL}, "
        f"database {'PostgreSQL schema ' + schema if schema else 'SQLite'}, {os.cpu_count()} CPUs"
    )
    replicas: list[SchedulerProcess] = []
    try:
        replicas.append(SchedulerProcess(env, work / "scheduler-1.log"))
        wait_until(lambda: any(by(replicas[0], f) for f in fires()), 60, "the first replica's first fire")
        replicas.append(SchedulerProcess(env, work / "scheduler-2.log"))
        bare = BareAPScheduler()
        first = len(fires())
        wait_until(lambda: len(fires()) >= first + args.fires, args.fires * 3 + 30, f"{args.fires} fires")
        baseline = bare.stop()
        lags = [f.lag_s for f in fires()[first : first + args.fires] if f.lag_s is not None]

        # Failover: SIGKILL the lock holder; its lease runs out, then the standby takes the lock and fires
        holder = leader_pid(client)
        leader, standby = replicas if replicas[0].pid == holder else replicas[::-1]
        before = len(fires())
        killed = time.time()
        killed_at = dt.datetime.fromtimestamp(killed, dt.UTC)
        leader.signal(signal.SIGKILL)
        leader.proc.wait(10)
        wait_until(lambda: leader_pid(client) == standby.pid, args.lock_ttl * 3 + 30, "the standby to lead")
        lock_s = time.time() - killed

        def standby_fired() -> Fire | None:
            return next((f for f in fires()[before:] if by(standby, f) and f.enqueued_at), None)

        wait_until(standby_fired, 30, "the standby's first fire")
        taken = standby_fired()
        assert taken is not None and taken.enqueued_at is not None
        fired_s = (taken.enqueued_at - killed_at).total_seconds()
        gap_until = taken.fire_time

        # Handover: a fresh standby, then SIGTERM to the leader (it deletes its lock on the way out)
        replicas.append(SchedulerProcess(env, work / "scheduler-3.log"))
        fresh = replicas[-1]
        wait_until(lambda: "scheduler " in fresh.output(), 60, "the fresh standby to start")
        stopped = time.time()
        standby.signal(signal.SIGTERM)
        wait_until(lambda: leader_pid(client) == fresh.pid, 30, "the fresh standby to lead")
        handover_s = time.time() - stopped
        standby.proc.wait(30)
        handed = len(fires())
        wait_until(
            lambda: any(by(fresh, f) and f.enqueued_at for f in fires()[handed - 2 :]),
            30,
            "the fresh standby's fire",
        )

        everything = fires()
        handover_gap = [
            f.status
            for f in everything
            if dt.datetime.fromtimestamp(stopped, dt.UTC) - dt.timedelta(seconds=1)
            < f.fire_time
            <= dt.datetime.fromtimestamp(stopped + handover_s, dt.UTC) + dt.timedelta(seconds=1)
        ]
        gap = Counter(f.status for f in everything if killed_at < f.fire_time <= gap_until)
        doubled = len(everything) - len({f.fire_time for f in everything})
        statuses = Counter(f.status for f in everything)
        keys = queued_keys(client, ("email",))
        sent_twice = sum(count - 1 for count in keys.values())
    finally:
        for replica in replicas:
            replica.stop()
        client.flushdb()
        drop_schema(schema)

    p50, p99 = statistics.median(lags), percentile(lags, 99)
    b50, b99 = statistics.median(baseline), percentile(baseline, 99)
    print(
        f"\nfire lag over {len(lags)} fires (enqueued minus scheduled), baseline over {len(baseline)} runs:"
    )
    print(f"  bare APScheduler  p50 {b50 * 1000:7.1f} ms  p99 {b99 * 1000:7.1f} ms")
    print(
        f"  jobs scheduler    p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  max {max(lags) * 1000:.1f} ms"
    )
    print(
        f"  ratio p50 {p50 / b50:.1f}x, p99 {p99 / b99:.1f}x bare; goal p99 <= {TARGET_P99_S:g} s: "
        f"{'met' if p99 <= TARGET_P99_S else 'NOT met'}"
    )
    print(f"\nfailover after SIGKILL of the leader (lock TTL {args.lock_ttl:g} s):")
    print(f"  standby holds the lock   {lock_s:6.2f} s  ratio to TTL {lock_s / args.lock_ttl:.2f}")
    print(f"  standby's first enqueue  {fired_s:6.2f} s  ratio to TTL {fired_s / args.lock_ttl:.2f}")
    print(f"  fire times of the gap, by status: {dict(gap)}")
    print(f"\nhandover after SIGTERM of the leader: the standby holds the lock {handover_s:.2f} s later")
    print(f"  fires around it, by status: {dict(Counter(handover_gap))}")
    print(f"\n  schedule_runs rows by status: {dict(statuses)}; messages in Redis {sum(keys.values())}")
    print(f"  fire times doubled: {doubled}; keys sent twice: {sent_twice}")
    return 0 if doubled == 0 and sent_twice == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
