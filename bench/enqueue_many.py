"""``enqueue.many`` (one pipelined round trip) against a loop of ``enqueue.send``, measured in the same run.

Same 10,000 ``send_welcome_email`` jobs each way, on Redis database 9 (flushed before each side and at the
end). ``many`` is timed on jobs prepared beforehand (what a dispatcher does: validate while building, send
once) and also including the preparation; Dramatiq's own ``actor.send`` loop on a bare ``RedisBroker`` (default
middleware) is printed for reference. The web app's side is measured: no worker runs. Each side's count of
stored messages is checked through ``app.transport.queue_stats`` (the same Redis layout for both).

    .venv/bin/python bench/enqueue_many.py [--jobs 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
TARGET_RATIO = 2.5


def _timed(
    setup: Callable[[], object], run: Callable[[object], object], rounds: int, flush: Callable[[], object]
) -> float:
    """Best wall time of ``run(setup())`` over ``rounds`` (setup and Redis flush are not timed)."""
    best = float("inf")
    for _ in range(rounds):
        flush()
        prepared = setup()
        started = time.perf_counter()
        run(prepared)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="Runs per variant; the best is kept.")
    args = parser.parse_args()
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ.pop("BROKER_URL", None)
    sys.path.insert(0, str(ROOT))

    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    from app import enqueue
    from app.transport import queue_stats

    client = redis.Redis.from_url(REDIS_URL)
    n = args.jobs

    def flush() -> None:
        client.flushdb()

    def check(queue: str) -> None:
        stored = queue_stats([queue], client)[0].ready
        assert stored == n, f"{stored} of {n} messages on {queue}"

    def prepare() -> list[enqueue.PreparedJob]:
        return [enqueue.job("send_welcome_email", user_id=i + 1) for i in range(n)]

    def send_loop(_: object) -> None:
        for i in range(n):
            enqueue.send("send_welcome_email", user_id=i + 1)

    # Warm up connections and caches on both paths before timing.
    flush()
    enqueue.many(prepare()[:100])
    enqueue.send("send_welcome_email", user_id=1)

    many_s = _timed(prepare, lambda jobs: enqueue.many(jobs), args.rounds, flush)  # type: ignore[arg-type]
    check("email")
    many_with_prepare_s = _timed(lambda: None, lambda _: enqueue.many(prepare()), args.rounds, flush)
    check("email")
    send_s = _timed(lambda: None, send_loop, args.rounds, flush)
    check("email")

    bare = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]
    dramatiq.set_broker(bare)

    @dramatiq.actor(queue_name="email", actor_name="send_welcome_email")
    def send_welcome_email(user_id: int) -> None:
        """Declared only to enqueue with Dramatiq's own API; never run here."""

    def actor_loop(_: object) -> None:
        for i in range(n):
            send_welcome_email.send(user_id=i + 1)

    actor_send_s = _timed(lambda: None, actor_loop, args.rounds, flush)
    check("email")
    flush()

    print(f"{n} send_welcome_email jobs, Redis {REDIS_URL}, best of {args.rounds}, {os.cpu_count()} CPUs")
    rows = [
        ("enqueue.send loop (baseline)", send_s),
        ("enqueue.many, prepared jobs", many_s),
        ("enqueue.job + enqueue.many", many_with_prepare_s),
        ("Dramatiq actor.send loop (reference)", actor_send_s),
    ]
    for name, seconds in rows:
        print(f"  {name:<38} {seconds:7.3f} s  {n / seconds:9.0f} jobs/s  {send_s / seconds:5.2f}x")
    ratio = send_s / many_s
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"ratio many/send loop: {ratio:.1f}x ({verdict} the {TARGET_RATIO}x target)")


if __name__ == "__main__":
    main()
