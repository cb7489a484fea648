"""The email queue at SendGrid's production latency, against baselines measured in the same run.

The SendGrid simulator runs in its own process and answers every Mail Send after a delay drawn from a
log-normal with median 150 ms and 99th percentile 600 ms (seeded), as SendGrid does in production. So a send
waits on the network far longer than it computes, and throughput is set by how many sends are in flight.

Parts (``--part``; ``all`` runs every one):

``sending``
    (a) one email worker process (``dramatiq app.broker actors.email``, 1 process x ``--threads``) against the
        concurrency bound, threads / mean latency; goal >= 0.9.
    (b) the same against a bare script that renders the same welcome email and calls the stock SDK
        (``SendGridAPIClient(...).send``) from as many threads, with no queue, no database, no log; goal >= 0.95.
    (c) CPU milliseconds per email of the worker (its process tree, from /proc) against the bare script's
        (its process CPU); goal <= 1.5x.
    Rounds alternate the two sides; medians are reported.
``sweep``
    (a) at 8, 16, 32 and 64 threads (``--sweep``), to choose the email queue's thread count.
``fan-out``
    ``dispatch_weekly_summaries`` over ``--users`` users, extrapolated to 100,000, and the time one worker
    process takes to send them at ``--threads`` (from the rate of part ``sending``, or of a short worker run
    when that part is not run).

Rates are steady-state rates: the middle 80 % of the acceptances the simulator recorded, so neither the worker's
start nor the tail of the slowest answers counts. Redis DB 3 (flushed) and a PostgreSQL schema of its own
(dropped at the end) keep the bench apart from everything else.

    .venv/bin/python bench/email_throughput.py [--part all] [--threads 32] [--rounds 3] [--seconds 12]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("JOBS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
PG_BASE_URL = os.environ.get("JOBS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
API_KEY = "SG.bench-key"
#: SendGrid's latency in production: median and 99th percentile, seconds.
P50_S, P99_S = 0.150, 0.600
#: The log-normal's mean for those percentiles: exp(mu + sigma^2 / 2).
SIGMA = math.log(P99_S / P50_S) / 2.3263478740408408
MEAN_LATENCY_S = P50_S * math.exp(SIGMA**2 / 2)
WEEK = "2026-W48"
FAN_OUT_TARGET = 100_000
#: Seconds a warmed-up worker is watched idle before its timed run: the CPU it spends with nothing to do
#: (consumer polls, heartbeats, writer threads), which a low send rate spreads over few emails.
IDLE_WINDOW_S = 2.0


def main() -> None:
    from app.constants import EMAIL_QUEUE, WORKER_DEFAULTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "sending", "sweep", "fan-out"), default="all")
    parser.add_argument(
        "--threads",
        type=int,
        default=WORKER_DEFAULTS[EMAIL_QUEUE][1],
        help="worker threads of parts sending and fan-out (default: the email queue's shipped count)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of part sending (medians reported)")
    parser.add_argument("--sweep", default="8,16,32,64", help="thread counts of part sweep")
    parser.add_argument("--sweep-rounds", type=int, default=2)
    parser.add_argument(
        "--seconds", type=float, default=12.0, help="length of a timed run at the concurrency bound"
    )
    parser.add_argument("--users", type=int, default=20_000, help="users of the fan-out (extrapolated)")
    options = parser.parse_args()
    print(
        f"SendGrid simulator latency: log-normal p50 {P50_S * 1000:.0f} ms, p99 {P99_S * 1000:.0f} ms, "
        f"mean {MEAN_LATENCY_S * 1000:.1f} ms; code under test: {ROOT}"
    )
    with simulator_process() as api_host, bench_schema() as database_url:
        env = {
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": database_url,
            "EMAIL_BACKEND": "sendgrid",
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_HOST": api_host,
            "EMAIL_FROM": "Bench <noreply@example.com>",
            "PUBLIC_BASE_URL": "https://app.example.com",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            "WORKER_HTTP_PORT": "0",
        }
        os.environ.update(env)
        from app.settings import reset_settings

        reset_settings()
        bench = Bench(env, api_host, database_url)
        bench.redis.flushdb()
        send_rate: float | None = None
        if options.part in ("all", "sending"):
            send_rate = bench.sending(options.threads, options.rounds, options.seconds)
        if options.part in ("all", "sweep"):
            bench.sweep([int(t) for t in options.sweep.split(",")], options.sweep_rounds, options.seconds)
        if options.part in ("all", "fan-out"):
            bench.fan_out(options.users, options.threads, send_rate, options.seconds)


class Bench:
    def __init__(self, env: dict[str, str], api_host: str, database_url: str) -> None:
        import redis
        import sqlalchemy

        self.env = env
        self.api_host = api_host
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.engine = sqlalchemy.create_engine(database_url, poolclass=sqlalchemy.pool.NullPool)

    # -------------------------------------------------------------------------------------------- parts

    def sending(self, threads: int, rounds: int, seconds: float) -> float:
        """(a), (b) and (c) at ``threads``; returns the worker's median rate."""
        bound = threads / MEAN_LATENCY_S
        count = emails_for(bound, seconds)
        print(
            f"\n== Sending: {count} welcome emails per side per round, {threads} threads, {rounds} rounds; "
            f"concurrency bound {threads} / {MEAN_LATENCY_S * 1000:.1f} ms = {bound:.1f} emails/s"
        )
        worker: list[Run] = []
        bare: list[Run] = []
        for number in range(1, rounds + 1):
            # Alternate which side goes first, so a drift of the host's speed does not favour one.
            order = ("bare", "worker") if number % 2 else ("worker", "bare")
            for side in order:
                if side == "bare":
                    bare.append(self.bare_sdk(threads, count))
                    print(f"  round {number}  bare script, stock SDK   {bare[-1]}")
                else:
                    worker.append(self.worker(threads, count))
                    print(f"  round {number}  worker, 1 x {threads:<3d} threads  {worker[-1]}")
        w_rate = statistics.median(r.rate for r in worker)
        b_rate = statistics.median(r.rate for r in bare)
        w_cpu = statistics.median(r.cpu_ms for r in worker)
        b_cpu = statistics.median(r.cpu_ms for r in bare)
        w_idle = statistics.median(r.idle_cores or 0.0 for r in worker)
        w_wall = statistics.median(r.wall_rate for r in worker)
        print(
            f"median worker {w_rate:.1f} emails/s, {w_cpu:.2f} CPU ms/email; idle it spends"
            f" {w_idle * 1000:.0f} CPU ms/s, so {w_cpu - w_idle * 1000 / w_wall:.2f} CPU ms/email beyond idle"
        )
        print(f"median bare   {b_rate:.1f} emails/s, {b_cpu:.2f} CPU ms/email")
        print(f"(a) worker / concurrency bound:  {w_rate / bound:.3f}  (goal >= 0.9)")
        print(f"(b) worker / bare stock SDK:     {w_rate / b_rate:.3f}  (goal >= 0.95)")
        print(f"(c) CPU per email worker / bare: {w_cpu / b_cpu:.2f}x  (goal <= 1.5x)")
        print(
            "    per-round ratios (a): "
            + ", ".join(f"{r.rate / bound:.3f}" for r in worker)
            + "; (b): "
            + ", ".join(f"{w.rate / b.rate:.3f}" for w, b in zip(worker, bare, strict=True))
        )
        return w_rate

    def sweep(self, thread_counts: list[int], rounds: int, seconds: float) -> None:
        print(f"\n== Thread sweep: one worker process, {rounds} rounds per thread count (medians)")
        for threads in thread_counts:
            bound = threads / MEAN_LATENCY_S
            runs = [self.worker(threads, emails_for(bound, seconds)) for _ in range(rounds)]
            rate = statistics.median(r.rate for r in runs)
            cpu = statistics.median(r.cpu_ms for r in runs)
            idle = statistics.median(r.idle_cores or 0.0 for r in runs)
            print(
                f"  {threads:3d} threads  bound {bound:6.1f}/s  worker {rate:6.1f}/s  (a) {rate / bound:.3f}"
                f"  {cpu:.2f} CPU ms/email  {cpu * rate / 1000:.2f} cores (idle {idle:.2f})"
                f"  rounds: {', '.join(f'{r.rate:.1f}' for r in runs)}"
            )

    def fan_out(self, users: int, threads: int, send_rate: float | None, seconds: float) -> None:
        from app.email.dispatch import dispatch_weekly_summaries

        self.add_users(users, prefix="fan")
        self.redis.flushdb()
        t0 = time.perf_counter()
        dispatched = dispatch_weekly_summaries(week=WEEK)
        dispatch_s = time.perf_counter() - t0
        from app.transport import queue_stats

        queued = queue_stats(["email"], self.redis)[0].ready
        self.redis.flushdb()
        dispatch_rate = dispatched / dispatch_s
        if send_rate is None:
            bound = threads / MEAN_LATENCY_S
            send_rate = self.worker(threads, emails_for(bound, seconds)).rate
        dispatch_100k = FAN_OUT_TARGET / dispatch_rate
        send_100k = FAN_OUT_TARGET / send_rate
        print(f"\n== Monday fan-out to {FAN_OUT_TARGET:,} users, one worker process x {threads} threads")
        print(
            f"  dispatch_weekly_summaries: {dispatched} messages ({queued} on the queue) in {dispatch_s:.2f} s"
            f" = {dispatch_rate:,.0f} messages/s -> {dispatch_100k:.1f} s for {FAN_OUT_TARGET:,}"
        )
        print(
            f"  sending at {send_rate:.1f} emails/s (welcome emails, steady state) -> {send_100k / 60:.1f} min"
            f" for {FAN_OUT_TARGET:,}; the dispatch overlaps the sending, so the fan-out takes"
            f" ~{max(send_100k, dispatch_100k) / 60:.1f} min"
        )

    # -------------------------------------------------------------------------------------------- sides

    def bare_sdk(self, threads: int, count: int) -> Run:
        """Render + stock SDK send from ``threads`` threads: no queue, no database, no log."""
        from sendgrid import SendGridAPIClient

        from app.email.backends.sendgrid import build_payload
        from app.email.delivery import compose
        from app.email.rendering import get_renderer
        from app.settings import get_settings

        settings = get_settings()
        client = SendGridAPIClient(api_key=API_KEY, host=self.api_host)
        client.client.timeout = settings.sendgrid_timeout_s  # the contract's advice: the SDK sets none
        renderer = get_renderer()

        def send(user_id: int) -> None:
            job = welcome_job_without_db(user_id)
            client.send(build_payload(compose(job, renderer), sender=settings.email_from))  # type: ignore[arg-type]

        run_threads(list(range(1, 2 * threads + 1)), send, threads)  # warm-up: imports, templates
        self.reset_simulator()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run_threads(list(range(10_000_000, 10_000_000 + count)), send, threads)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return Run(self.steady_rate(count), count / wall, cpu * 1000 / count)

    def worker(self, threads: int, count: int) -> Run:
        """Enqueue ``count`` welcome emails at once to a running worker; time until all are marked sent."""
        from app import enqueue
        from app.jobs.email import welcome_key

        def jobs(user_ids: list[int]) -> list[Any]:
            return [
                enqueue.job("send_welcome_email", user_id=u, idempotency_key=welcome_key(u)) for u in user_ids
            ]

        warm_up = self.add_users(2 * threads, prefix="warm")
        user_ids = self.add_users(count, prefix="send")
        (ROOT / "var").mkdir(exist_ok=True)
        with (
            open(ROOT / "var" / "bench-email-worker.log", "ab") as log,
            worker_process(threads, self.env, log) as worker,
        ):
            sent_before = self.sent_count()
            enqueue.many(jobs(warm_up))  # also the readiness check: the worker is up once these are sent
            wait(lambda: self.sent_count() >= sent_before + len(warm_up), 120, "warm-up emails marked sent")
            self.reset_simulator()
            idle0, idle_wall0 = tree_cpu_seconds(worker.pid), time.perf_counter()
            time.sleep(IDLE_WINDOW_S)
            idle_cores = (tree_cpu_seconds(worker.pid) - idle0) / (time.perf_counter() - idle_wall0)
            cpu0, wall0 = tree_cpu_seconds(worker.pid), time.perf_counter()
            for start in range(0, count, 1000):
                enqueue.many(jobs(user_ids[start : start + 1000]))
            expected = sent_before + len(warm_up) + count
            wait(lambda: self.sent_count() >= expected, 600, "every email marked sent", interval=0.05)
            wall, cpu = time.perf_counter() - wall0, tree_cpu_seconds(worker.pid) - cpu0
        return Run(self.steady_rate(count), count / wall, cpu * 1000 / count, idle_cores)

    # -------------------------------------------------------------------------------------------- helpers

    def steady_rate(self, count: int) -> float:
        """Acceptances per second over the middle 80 % of the run, from the simulator's own record."""
        with urllib.request.urlopen(f"{self.api_host}/_simulator/messages", timeout=30) as response:
            times = sorted(m["received_at"] for m in json.load(response))
        assert len(times) == count, f"the simulator accepted {len(times)} of {count} emails"
        low, high = int(0.1 * count), int(0.9 * count) - 1
        return (high - low) / (times[high] - times[low])

    def reset_simulator(self) -> None:
        request = urllib.request.Request(f"{self.api_host}/_simulator/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def add_users(self, count: int, *, prefix: str) -> list[int]:
        import sqlalchemy

        from app.db.models import User

        tag = uuid.uuid4().hex[:8]
        rows = [
            {"email": f"{prefix}{tag}{i}@example.com", "name": f"User {i}", "timezone": "UTC"}
            for i in range(count)
        ]
        table = User.__table__
        with self.engine.begin() as connection:
            for start in range(0, count, 10_000):
                connection.execute(sqlalchemy.insert(table), rows[start : start + 10_000])
            ids = connection.scalars(
                sqlalchemy.select(table.c.id)
                .where(table.c.email.like(f"{prefix}{tag}%"))
                .order_by(table.c.id)
            )
            return list(ids)

    def sent_count(self) -> int:
        import sqlalchemy

        from app.db.models import EmailLog

        table = EmailLog.__table__
        with self.engine.connect() as connection:
            query = sqlalchemy.select(sqlalchemy.func.count()).where(table.c.status == "sent")
            return int(connection.scalar(query) or 0)


class Run:
    def __init__(self, rate: float, wall_rate: float, cpu_ms: float, idle_cores: float | None = None) -> None:
        self.rate, self.wall_rate, self.cpu_ms, self.idle_cores = rate, wall_rate, cpu_ms, idle_cores

    def __str__(self) -> str:
        idle = "" if self.idle_cores is None else f"  (idle: {self.idle_cores * 1000:.0f} CPU ms/s)"
        return (
            f"{self.rate:7.1f} emails/s steady ({self.wall_rate:7.1f} first to last)  "
            f"{self.cpu_ms:5.2f} CPU ms/email{idle}"
        )


def emails_for(bound: float, seconds: float) -> int:
    """Emails for a run of about ``seconds`` at the bound (at least 300, so the middle 80 % means something)."""
    return max(300, int(bound * seconds))


def welcome_job_without_db(user_id: int) -> Any:
    from app.email.delivery import EmailJob
    from app.email.links import saved_opportunities
    from app.email.recipients import Recipient
    from app.jobs.email import welcome_key

    recipient = Recipient(user_id, f"send{user_id}@example.com", f"User {user_id}", "UTC", True, frozenset())
    context = {"has_interests": False, "saved_url": saved_opportunities()}
    return EmailJob(kind="welcome", key=welcome_key(user_id), recipient=recipient, context=context)


def run_threads(items: list[int], work: Callable[[int], None], threads: int) -> None:
    lock = threading.Lock()
    pending = list(items)

    def loop() -> None:
        while True:
            with lock:
                if not pending:
                    return
                item = pending.pop()
            work(item)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


@contextmanager
def worker_process(threads: int, env: dict[str, str], log: Any) -> Iterator[subprocess.Popen[bytes]]:
    """One email worker process: ``jobs worker email``'s Dramatiq command line with ``app.broker`` in place of
    ``app.worker_main``/``app.worker_boot``, which only tie the processes to their parents at start."""
    command = [
        sys.executable, "-m", "dramatiq", "app.broker", "actors.email",
        "--queues", "email", "--processes", "1", "--threads", str(threads), "--skip-logging",
    ]  # fmt: skip
    worker = subprocess.Popen(
        command,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait(60)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants (Dramatiq forks its worker processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return total


def wait(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


@contextmanager
def simulator_process() -> Iterator[str]:
    """The simulator in its own process; ``JOBS_BENCH_SIMULATOR_ROOT`` runs it from another checkout (an older
    one, whose simulator had no latency setting, is measured against this one's)."""
    simulator_root = os.environ.get("JOBS_BENCH_SIMULATOR_ROOT", str(ROOT))
    command = [
        sys.executable, "-m", "app.testing.sendgrid_server", "--port", "0", "--api-key", API_KEY,
        "--keep", "100000", "--seed", "1",
        "--latency-p50-ms", str(P50_S * 1000), "--latency-p99-ms", str(P99_S * 1000),
    ]  # fmt: skip
    from bench.scratch import simulator_url

    with simulator_url(command, simulator_root) as url:
        yield url


@contextmanager
def bench_schema() -> Iterator[str]:
    import sqlalchemy

    from app.db import migrate

    schema = f"bench_email_h3_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(PG_BASE_URL, poolclass=sqlalchemy.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        from app.db.session import dispose_engines

        dispose_engines()
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
