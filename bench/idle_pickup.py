"""First pickup after idle: how long a message sent to a quiet queue waits before its actor starts.

Dramatiq's consumer sleeps up to ``worker_timeout`` (1 s) between fetches of an empty queue, so the first message
after a quiet spell waits for the end of that sleep (docs/dramatiq.md "Idle pickup and reconnects"). Both sides
run a real worker (1 process x 8 threads by default) against a Redis server this script starts for itself, so
that ``INFO commandstats`` counts only their commands:

- bare: a ``RedisBroker`` with Dramatiq's default middleware, messages sent with ``RedisBroker.enqueue``;
- platform: ``app.broker`` (what ``jobs worker`` runs), messages sent with the platform's publisher
  (:func:`app.transport.publish.publish`, what the enqueue helpers call).

For each side: ``--samples`` messages, each sent after the queue has been idle for a random 1-3 s; the latency
is the actor's start (``time.time()`` in the worker) minus the moment before the send. Then the idle load: the
worker running, nothing sent, commands per second from ``INFO commandstats`` over ``--idle-seconds``.

    .venv/bin/python bench/idle_pickup.py [--samples 40] [--idle-seconds 10] [--threads 8]

This file is also the workers' actor module: ``BENCH_MODE=platform|bare`` chooses the broker on import.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "bench_idle"
STARTED_KEY = "bench:idle:started"
#: The goals of issue 10: first pickup after idle p99 at most this, idle Redis load at most this times bare's.
TARGET_P99_MS = 50.0
TARGET_LOAD_RATIO = 2.0

# ------------------------------------------------------------------------------ the workers' actor module
_MODE = os.environ.get("BENCH_MODE")
if _MODE in ("platform", "bare"):
    import dramatiq
    import redis

    if _MODE == "platform":
        import app.broker  # noqa: F401  (the full platform stack, as `jobs worker` loads it)
    else:
        from dramatiq.brokers.redis import RedisBroker

        dramatiq.set_broker(RedisBroker(url=os.environ["REDIS_URL"]))

    _client = redis.Redis.from_url(os.environ["REDIS_URL"])

    @dramatiq.actor(queue_name=QUEUE, max_retries=0)
    def started(sample: str) -> None:
        """Records when it started: what is measured is the wait before this line."""
        _client.rpush(STARTED_KEY, f"{sample} {time.time()!r}")


# ------------------------------------------------------------------------------------------------ the runner


@dataclass
class Side:
    mode: str
    latencies_ms: list[float]
    idle_calls: dict[str, int]
    idle_seconds: float

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def idle_rate(self) -> float:
        return sum(self.idle_calls.values()) / self.idle_seconds


def _sender(mode: str, url: str):  # type: ignore[no-untyped-def]
    """A function that sends one ``started`` message the way ``mode``'s producers do."""
    from dramatiq import Message

    if mode == "bare":
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)

        def send_bare(sample: str) -> None:
            broker.enqueue(
                Message(queue_name=QUEUE, actor_name="started", args=(sample,), kwargs={}, options={})
            )

        return send_bare

    from app.transport.publish import publish
    from app.transport.redis_broker import build_redis_broker

    publisher = build_redis_broker(url)

    def send_platform(sample: str) -> None:
        message = Message(queue_name=QUEUE, actor_name="started", args=(sample,), kwargs={}, options={})
        publish([(message, None)], broker=publisher)

    return send_platform


def _wait_started(client: object, count: int, proc: subprocess.Popen[bytes], log: Path) -> list[str]:
    deadline = time.monotonic() + 30
    while True:
        entries = client.lrange(STARTED_KEY, 0, -1)  # type: ignore[attr-defined]
        if len(entries) >= count:
            return [e.decode() for e in entries]
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not run sample {count}; see {log}")
        time.sleep(0.002)


def run_side(
    mode: str, server: object, samples: int, idle_s: float, threads: int, env: dict[str, str]
) -> Side:
    url = server.url()  # type: ignore[attr-defined]
    client = server.client()  # type: ignore[attr-defined]
    client.flushall()
    modules = ["app.broker", "bench.idle_pickup"] if mode == "platform" else ["bench.idle_pickup"]
    command = [
        sys.executable, "-m", "dramatiq", *modules, "--queues", QUEUE,
        "--processes", "1", "--threads", str(threads), "--skip-logging",
    ]  # fmt: skip
    log_path = Path(tempfile.gettempdir()) / f"bench-idle-{mode}-{os.getpid()}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        command,
        env={**os.environ, **env, "REDIS_URL": url, "BENCH_MODE": mode, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    send = _sender(mode, url)
    rng = random.Random(10)
    latencies: list[float] = []
    try:
        # Warm-up: the first message proves the worker is consuming (imports, connections) and is not counted.
        send("warmup")
        _wait_started(client, 1, proc, log_path)
        for number in range(1, samples + 1):
            time.sleep(rng.uniform(1.0, 3.0))
            sample = f"s{number}"
            sent = time.time()
            send(sample)
            entry = _wait_started(client, number + 1, proc, log_path)[-1]
            name, at = entry.split()
            assert name == sample, entry
            latencies.append((float(at) - sent) * 1000)
        # Idle load: let the consumers settle into their idle rhythm, then count every command for a while.
        time.sleep(3)
        before = server.total_calls()  # type: ignore[attr-defined]
        time.sleep(idle_s)
        after = server.total_calls()  # type: ignore[attr-defined]
    finally:
        from bench.scratch import stop_worker

        stop_worker(proc)
        log.close()
        client.close()
    calls = {name: after[name] - before.get(name, 0) for name in after}
    calls = {name: n for name, n in calls.items() if n and name != "info"}  # our own INFO is not the worker's
    return Side(mode, latencies, calls, idle_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--only", choices=("bare", "platform"), help="Measure one side only.")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from bench.scratch import drop_schema, migrated_database, worker_env
    from tests.support.redis_server import running_redis

    database_url, schema = migrated_database()
    env = worker_env(database_url, log_level="WARNING")
    os.environ.pop("BROKER_URL", None)
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    sides: dict[str, Side] = {}
    try:
        with running_redis(Path(tempfile.mkdtemp(prefix="bench-redis-"))) as server:
            print(
                f"{args.samples} samples after 1-3 s idle, 1 process x {args.threads} threads, own Redis on port "
                f"{server.port}, {os.cpu_count()} CPUs"
            )
            for mode in ("bare", "platform"):
                if args.only and mode != args.only:
                    continue
                for stale in metrics_dir.iterdir():
                    stale.unlink()
                side = run_side(mode, server, args.samples, args.idle_seconds, args.threads, env)
                sides[mode] = side
                top = ", ".join(
                    f"{name} {n / side.idle_seconds:.1f}"
                    for name, n in sorted(side.idle_calls.items(), key=lambda kv: -kv[1])
                )
                print(
                    f"  {mode:<8} pickup p50 {side.p50:7.1f} ms  p99 {side.p99:7.1f} ms  "
                    f"max {max(side.latencies_ms):7.1f} ms  idle {side.idle_rate:6.1f} cmd/s ({top})"
                )
    finally:
        drop_schema(schema)
    if len(sides) == 2:
        bare, platform = sides["bare"], sides["platform"]
        p99_verdict = "meets" if platform.p99 <= TARGET_P99_MS else "ABOVE"
        load_ratio = platform.idle_rate / bare.idle_rate
        load_verdict = "meets" if load_ratio <= TARGET_LOAD_RATIO else "ABOVE"
        print(f"pickup p50 platform/bare   {platform.p50 / bare.p50:6.2f}")
        print(
            f"pickup p99 platform/bare   {platform.p99 / bare.p99:6.2f}  ({p99_verdict} p99 <= {TARGET_P99_MS} ms)"
        )
        print(
            f"idle load platform/bare    {load_ratio:6.2f}  ({load_verdict} the {TARGET_LOAD_RATIO}x bound)"
        )


if __name__ == "__main__":
    main()
