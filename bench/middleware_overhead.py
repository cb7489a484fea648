"""What the platform's middleware stack costs per message, against bare Dramatiq measured in the same run.

Both sides process the same number of no-op messages with a real ``dramatiq`` worker (1 process x 8 threads by
default) on the same Redis: the platform side imports ``app.broker`` (every middleware, job history into a
PostgreSQL schema or SQLite, Prometheus multiprocess files, one JSON log line per job), the bare side a
``RedisBroker`` with Dramatiq's default middleware. Messages are enqueued first (pipelined); the clock starts
when the worker fetches the first message (so interpreter and import time are excluded; they are printed
separately) and stops when the queue and every acks set are empty.

    .venv/bin/python bench/middleware_overhead.py [--messages 20000] [--rounds 1] [--without JobHistory,JobLog]

This file is also the workers' actor module: ``BENCH_MODE=platform|bare`` chooses the broker on import.
Redis database 9 is flushed before and after each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
QUEUE = "bench"
TARGET_RATIO = 0.85

# ------------------------------------------------------------------------------ the workers' actor module
_MODE = os.environ.get("BENCH_MODE")
if _MODE == "platform":
    import dramatiq

    import app.broker  # the full platform stack

    # Ablation for finding where the time goes: ``--without JobHistory,JobLog`` drops those middleware.
    _without = set(filter(None, os.environ.get("BENCH_WITHOUT", "").split(",")))
    app.broker.broker.middleware[:] = [
        m for m in app.broker.broker.middleware if type(m).__name__ not in _without
    ]

    @dramatiq.actor(queue_name=QUEUE)
    def noop() -> None:
        """Does nothing: what is measured is everything around it."""

elif _MODE == "bare":
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    dramatiq.set_broker(RedisBroker(url=REDIS_URL))  # type: ignore[no-untyped-call]

    @dramatiq.actor(queue_name=QUEUE)
    def noop() -> None:
        """Does nothing: what is measured is everything around it."""


# ------------------------------------------------------------------------------------------------ the runner


@dataclass
class Result:
    mode: str
    messages: int
    seconds: float
    boot_seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def _enqueue(count: int) -> None:
    from dramatiq import Message

    from app.transport.publish import Outgoing, publish

    batch = 2_000
    for start in range(0, count, batch):
        messages: list[Outgoing] = [
            (Message(queue_name=QUEUE, actor_name="noop", args=(), kwargs={}, options={}), None)
            for _ in range(min(batch, count - start))
        ]
        publish(messages)


def _ready(client: redis.Redis[bytes]) -> int:
    from app.transport import queue_stats

    return queue_stats([QUEUE], client)[0].ready


def _in_flight(client: redis.Redis[bytes]) -> int:
    """Messages not finished yet: ready, delayed, or fetched by a live worker and not acked.

    Read through ``app.transport`` for both sides (bare Dramatiq keeps the same Redis layout); a worker counts as
    live while it heartbeats, which Dramatiq's consumers do on every fetch, busy or idle.
    """
    from app.transport import queue_stats

    stats = queue_stats([QUEUE], client)[0]
    return stats.ready + stats.delayed + stats.in_progress


def run_once(mode: str, messages: int, processes: int, threads: int, env: dict[str, str]) -> Result:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    _enqueue(messages)
    assert _ready(client) == messages
    modules = (
        ["app.broker", "bench.middleware_overhead"] if mode == "platform" else ["bench.middleware_overhead"]
    )
    command = [
        sys.executable, "-m", "dramatiq", *modules, "--queues", QUEUE,
        "--processes", str(processes), "--threads", str(threads), "--skip-logging",
    ]  # fmt: skip
    log = open(Path(tempfile.gettempdir()) / f"bench-{mode}.log", "wb")  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        env={**os.environ, **env, "BENCH_MODE": mode, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while _ready(client) == messages:
            if proc.poll() is not None:
                raise SystemExit(f"{mode} worker exited with {proc.returncode}; see {log.name}")
            time.sleep(0.005)
        first_fetch = time.perf_counter()
        deadline = first_fetch + 600
        while _in_flight(client):
            if time.perf_counter() > deadline or proc.poll() is not None:
                raise SystemExit(f"{mode} worker did not drain the queue; see {log.name}")
            time.sleep(0.02)
        drained = time.perf_counter()
    finally:
        from bench.scratch import stop_worker

        stop_worker(proc)
        log.close()
        client.flushdb()
    return Result(mode, messages, drained - first_fetch, first_fetch - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="Alternating runs of each side; best is kept.")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the platform worker.")
    parser.add_argument(
        "--without", default="", help="Comma-separated platform middleware to drop (ablation)."
    )
    args = parser.parse_args()

    os.environ["REDIS_URL"] = REDIS_URL
    sys.path.insert(0, str(ROOT))
    from bench.scratch import drop_schema, migrated_database, worker_env

    database_url, schema = migrated_database()
    env = {
        **worker_env(database_url, log_level=args.log_level),
        "REDIS_URL": REDIS_URL,
        "BENCH_WITHOUT": args.without,
    }
    print(
        f"{args.messages} no-op messages, {args.processes} process(es) x {args.threads} threads, "
        f"Redis {REDIS_URL}, database {'PostgreSQL schema ' + schema if schema else 'SQLite'}, {os.cpu_count()} CPUs"
    )
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    best: dict[str, Result] = {}
    try:
        for round_no in range(1, args.rounds + 1):
            for mode in ("bare", "platform"):
                for stale in metrics_dir.iterdir():
                    stale.unlink()
                result = run_once(mode, args.messages, args.processes, args.threads, env)
                print(
                    f"  round {round_no} {mode:<8} {result.rate:8.0f} msg/s  "
                    f"({result.seconds:.2f} s to drain, worker boot {result.boot_seconds:.2f} s)"
                )
                if mode not in best or result.rate > best[mode].rate:
                    best[mode] = result
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        drop_schema(schema)
    ratio = best["platform"].rate / best["bare"].rate
    print(f"bare Dramatiq (default middleware)   {best['bare'].rate:8.0f} msg/s")
    print(f"platform stack (app.broker)          {best['platform'].rate:8.0f} msg/s")
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"ratio platform/bare                  {ratio:8.2f}  ({verdict} the {TARGET_RATIO} target)")


if __name__ == "__main__":
    main()
