"""The SAM.gov opportunities sync at a realistic SAM.gov latency, against a baseline measured in the same run.

The SAM.gov simulator runs in its own process with ``--notices`` notices over 120 days and answers each page
after a log-normal delay (median ``--latency-p50-ms``, 99th percentile ``--latency-p99-ms``). One sync worker
process (``actors.sync``, 1 process x ``--threads``, the sync queue's default) runs every partition.

(a) Ingest: a range sync of the whole data set (7-day partitions, 1,000 notices a page), from the run's start
    to its close, against a like-for-like bare script in this process: as many threads as the worker has
    (``--threads`` x ``--processes``) walk the same 7-day windows of the same simulator (same latency), one page
    after another with plain httpx, and store each page the bare way (a payload hash per record, ``COPY`` into
    a temporary table and ``INSERT … ON CONFLICT … WHERE hash differs`` into a table of notice id, JSONB
    payload and hash, one transaction a page; no retries, quota, normalization or bookkeeping). Goal: notices/s
    of the sync >= 0.5x the bare script's. A second reference is printed too: the same bare upsert of the same
    records already in memory (no HTTP), the write path's ceiling; run with ``--latency-p50-ms 0`` to compare
    the platform's CPU cost with it.
(b) Second sync, nothing changed: the incremental run that follows (from the watermark, one day of overlap),
    and, to show what the payload hash saves, the same full range again. Goal: >= 3x faster than the first.
(c) Peak RSS of the worker process (VmHWM) after syncing ``--notices`` and after a fifth of them, each in a fresh
    worker: bounded by a page, not by the total, when the two are close.

Redis DB 3 (flushed) and a PostgreSQL schema of its own (dropped at the end) keep the bench apart.

    .venv/bin/python bench/sync.py [--notices 100000] [--threads 4] [--latency-p50-ms 300] [--latency-p99-ms 1500]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("JOBS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
API_KEY = "sam-bench-key-0123456789"
END = dt.date(2026, 11, 30)
DAYS = 120
#: The data set's size, for the peak-RSS comparison run.
TOTAL = [1]


def main() -> None:
    from bench.scratch import argument_parser

    parser = argument_parser(__doc__)
    parser.add_argument("--notices", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--latency-p50-ms", type=float, default=300.0)
    parser.add_argument("--latency-p99-ms", type=float, default=1500.0)
    args = parser.parse_args()

    import redis

    from bench.scratch import drop_schema, migrated_database

    redis.Redis.from_url(REDIS_URL).flushdb()
    url, schema = migrated_database()
    try:
        with simulator_process(args.notices, args.latency_p50_ms, args.latency_p99_ms) as sim_url:
            report = run(args, url, sim_url)
    finally:
        from app.db.session import dispose_engines

        dispose_engines()
        drop_schema(schema)
        redis.Redis.from_url(REDIS_URL).flushdb()
    print(json.dumps(report, indent=2))


def run(args: argparse.Namespace, url: str, sim_url: str) -> dict[str, Any]:
    os.environ.update(env(url, sim_url))
    from app.settings import reset_settings

    reset_settings()
    first, last = END - dt.timedelta(days=DAYS - 1), END
    warm_simulator(sim_url, first, last)
    records = dataset_records(args.notices)
    memory_s = bare_copy_upsert(url, records)
    memory_rate = len(records) / memory_s
    del records
    bare_s, bare_stored = bare_fetch_upsert(url, sim_url, first, last, args.threads * args.processes)
    bare_rate = bare_stored / bare_s

    with worker(url, sim_url, args.threads, args.processes) as proc:
        ingest_s, run1 = timed_run(posted_from=first, posted_to=last)
        peak_full = vm_hwm_mb(proc.pid)
        incremental_s, run2 = timed_run(today=last + dt.timedelta(days=1))
        again_s, run3 = timed_run(posted_from=first, posted_to=last)
    small = args.notices // 5
    TOTAL[0] = args.notices
    peak_small = peak_of_a_fresh_sync(url, sim_url, args.threads, args.processes, small)
    stored = run1["inserted"]
    return {
        "notices": args.notices,
        "latency_ms": {"p50": args.latency_p50_ms, "p99": args.latency_p99_ms},
        "threads": args.threads,
        "processes": args.processes,
        "a_ingest": {
            "sync_s": round(ingest_s, 2),
            "sync_notices_per_s": round(stored / ingest_s),
            "baseline_bare_fetch_and_copy_upsert": {
                "s": round(bare_s, 2),
                "notices": bare_stored,
                "notices_per_s": round(bare_rate),
                "threads": args.threads * args.processes,
            },
            "ratio": round((stored / ingest_s) / bare_rate, 2),
            "goal": ">= 0.5 (ratio against the like-for-like baseline above)",
            "reference_write_path_ceiling_in_memory_copy_upsert": {
                "s": round(memory_s, 2),
                "notices_per_s": round(memory_rate),
                "ratio_sync_to_it": round((stored / ingest_s) / memory_rate, 2),
            },
            "run": run1,
        },
        "b_second_sync": {
            "incremental_s": round(incremental_s, 2),
            "speedup_incremental": round(ingest_s / incremental_s, 1),
            "incremental_run": run2,
            "full_range_again_s": round(again_s, 2),
            "speedup_full_range_again": round(ingest_s / again_s, 2),
            "full_range_again_run": run3,
            "goal": ">= 3x",
        },
        "c_peak_rss_mb": {
            f"worker_after_{args.notices}": peak_full,
            f"worker_after_{small}": peak_small,
            "ratio": round(peak_full / peak_small, 2),
            "goal": "close to 1 (bounded by a page, not by the total)",
        },
    }


def warm_simulator(sim_url: str, first: dt.date, last: dt.date) -> None:
    """Walk the data set once, eight windows at a time, so the simulator serves every later page from its cache:
    what is timed is the platform and the latency, not the simulator generating notices."""
    from concurrent.futures import ThreadPoolExecutor

    from app.sync.client import SamGovClient
    from app.sync.runs import windows

    def walk(window: tuple[dt.date, dt.date]) -> int:
        with SamGovClient(base_url=sim_url, api_key=API_KEY, quota=None, offset_mode="record") as client:
            pages = client.iter_opportunity_pages(
                posted_from=window[0], posted_to=window[1], purpose="on_demand"
            )
            return sum(len(page.records) for page in pages)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(walk, windows(first, last, 7)))


def env(url: str, sim_url: str) -> dict[str, str]:
    from bench.scratch import worker_env

    return {
        **worker_env(url, log_level="WARNING"),
        "REDIS_URL": REDIS_URL,
        "SAM_GOV_BASE_URL": sim_url,
        "SAM_GOV_API_KEY": API_KEY,
        "SAM_GOV_DAILY_QUOTA": "1000000",
        "SAM_GOV_OFFSET_MODE": "record",
        "EMAIL_BACKEND": "console",
    }


def dataset_records(size: int) -> list[dict[str, Any]]:
    """The simulator's records (same seed), generated before any timing; malformed ones left out (a bare upsert
    has no place for a record without an id)."""
    from app.testing.samgov_data import SamGovDataset

    data = SamGovDataset(size=size, end=END, days=DAYS)
    return [data.notice(i) for i in range(size) if not data.is_malformed(i)]


def bare_copy_upsert(url: str, records: list[dict[str, Any]], batch: int = 1000) -> float:
    """Seconds to upsert ``records`` from memory the bare way (module docstring), ``batch`` a transaction."""
    engine = bare_table(url)
    start = time.perf_counter()
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        for offset in range(0, len(records), batch):
            bare_store(driver, records[offset : offset + batch])
    elapsed = time.perf_counter() - start
    drop_bare_table(engine)
    return elapsed


def bare_fetch_upsert(
    url: str, sim_url: str, first: dt.date, last: dt.date, threads: int
) -> tuple[float, int]:
    """(seconds, notices stored) of a bare script doing what the sync does, without the platform: ``threads``
    threads walk the same 7-day windows of the same simulator, one page of 1,000 after another (plain httpx,
    orjson), and store each page as it comes (:func:`bare_store`, one transaction a page). No retries, no quota,
    no paging rules beyond "next offset until ``totalRecords``", no normalization, no bookkeeping."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import orjson

    engine = bare_table(url, pool_size=threads)
    http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=threads))

    def walk(window: tuple[dt.date, dt.date]) -> int:
        stored, offset, total = 0, 0, 1
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            while offset < total:
                params = {
                    "postedFrom": window[0].strftime("%m/%d/%Y"),
                    "postedTo": window[1].strftime("%m/%d/%Y"),
                    "limit": "1000",
                    "offset": str(offset),
                    "api_key": API_KEY,
                }
                response = http.get(sim_url + "/opportunities/v2/search", params=params)
                response.raise_for_status()
                body = orjson.loads(response.content)
                data = body.get("opportunitiesData") or []
                records = [r for r in data if isinstance(r, dict) and isinstance(r.get("noticeId"), str)]
                bare_store(driver, records)
                stored += len(records)
                total = int(body.get("totalRecords") or 0)
                offset += 1000
                if len(data) < 1000:
                    break
        return stored

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        stored = sum(pool.map(walk, bare_windows(first, last, 7)))
    elapsed = time.perf_counter() - start
    http.close()
    drop_bare_table(engine)
    return elapsed, stored


def bare_windows(first: dt.date, last: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """The sync's partition windows (consecutive, inclusive, ``days`` long, the last one shorter)."""
    out = []
    while first <= last:
        end = min(first + dt.timedelta(days=days - 1), last)
        out.append((first, end))
        first = end + dt.timedelta(days=1)
    return out


def bare_table(url: str, pool_size: int = 1) -> Any:
    """An engine on ``url`` with the bare table (notice id, JSONB payload, hash; only its primary key)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, pool_size=pool_size, max_overflow=0)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE bench_bare (notice_id text PRIMARY KEY, raw jsonb NOT NULL, payload_hash text NOT NULL)"
        )
    return engine


def drop_bare_table(engine: Any) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE bench_bare")
    engine.dispose()


def bare_store(driver: Any, records: list[dict[str, Any]]) -> None:
    """One transaction: a SHA-256 of each record's canonical JSON, ``COPY`` into a temporary table, then
    ``INSERT … ON CONFLICT … WHERE`` the hash differs."""
    import orjson

    with driver.transaction(), driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bare_stage (notice_id text, raw jsonb, payload_hash text) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY bare_stage (notice_id, raw, payload_hash) FROM STDIN") as copy:
            for record in records:
                canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
                digest = hashlib.sha256(canonical).hexdigest()
                copy.write_row((record["noticeId"], canonical.decode(), digest))
        cursor.execute(
            "INSERT INTO bench_bare SELECT DISTINCT ON (notice_id) * FROM bare_stage "
            "ON CONFLICT (notice_id) DO UPDATE SET raw = EXCLUDED.raw, payload_hash = EXCLUDED.payload_hash "
            "WHERE bench_bare.payload_hash IS DISTINCT FROM EXCLUDED.payload_hash"
        )


def timed_run(**kwargs: Any) -> tuple[float, dict[str, Any]]:
    """Enqueue a sync, wait for its run to close; (seconds from the run's start to its close, its counts)."""
    from sqlalchemy import func, select

    from app import enqueue
    from app.db.models import SyncRun
    from app.db.session import session_scope

    with session_scope() as session:
        before = session.scalar(select(func.coalesce(func.max(SyncRun.id), 0)))
    if "today" in kwargs:
        # An incremental run "tomorrow": plan it here (the service takes the day), let the worker run it.
        from app.sync import service

        service.sync_opportunities(today=kwargs["today"])
    else:
        enqueue.sam_sync(**kwargs)
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        with session_scope() as session:
            run = session.scalar(
                select(SyncRun)
                .where(SyncRun.id > before, SyncRun.kind == "opportunities")
                .order_by(SyncRun.id)
            )
            if run is not None and run.status != "running":
                assert run.finished_at is not None
                counts = {
                    k: getattr(run, k)
                    for k in ("status", "partitions_total", "pages", "records_seen", "inserted", "updated")
                }
                counts |= {"unchanged": run.unchanged, "invalid": run.invalid, "requests": run.requests_spent}
                return (run.finished_at - run.started_at).total_seconds(), counts
        time.sleep(0.2)
    raise TimeoutError("sync run did not close within an hour")


def peak_of_a_fresh_sync(url: str, sim_url: str, threads: int, processes: int, size: int) -> float:
    """VmHWM (MB) of a fresh worker after syncing the first ``size`` notices of the data set, cut into as many
    partitions as the full run (so as many pages are in flight at once: only the total differs). The same schema
    serves, its notices deleted first."""
    from sqlalchemy import delete

    from app.db.models import Opportunity
    from app.db.session import session_scope

    with session_scope() as session:
        session.execute(delete(Opportunity))
    days = DAYS * size // TOTAL[0]  # the notices are spread evenly over the days
    partition_days = max(1, round(days * 7 / DAYS))
    with worker(url, sim_url, threads, processes, partition_days=partition_days) as proc:
        timed_run(
            posted_from=END - dt.timedelta(days=DAYS - 1), posted_to=END - dt.timedelta(days=DAYS - days)
        )
        return vm_hwm_mb(proc.pid)


def vm_hwm_mb(pid: int) -> float:
    """The peak RSS of the worker's process tree's largest member (the Dramatiq worker child)."""
    peaks = []
    for child in [pid, *children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return round(max(peaks), 1)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *children(int(child))]
    return found


@contextlib.contextmanager
def worker(
    url: str, sim_url: str, threads: int, processes: int, *, partition_days: int = 7
) -> Iterator[subprocess.Popen[bytes]]:
    from app.parent_death import LAUNCHER_PID_ENV
    from bench.scratch import stop_worker

    command = [
        sys.executable, "-m", "app.worker_main", "app.worker_boot", "actors.sync", "--queues", "sync",
        "--processes", str(processes), "--threads", str(threads), "--skip-logging",
    ]  # fmt: skip
    full_env = {
        **os.environ,
        **env(url, sim_url),
        "SYNC_PARTITION_DAYS": str(partition_days),
        "PYTHONPATH": str(ROOT),
        LAUNCHER_PID_ENV: str(os.getpid()),
    }
    proc = subprocess.Popen(command, cwd=ROOT, env=full_env, start_new_session=True)
    try:
        yield proc
    finally:
        stop_worker(proc)


@contextlib.contextmanager
def simulator_process(size: int, p50_ms: float, p99_ms: float) -> Iterator[str]:
    command = [
        sys.executable, "-m", "app.testing.samgov_server", "--port", "0", "--api-key", API_KEY,
        "--size", str(size), "--days", str(DAYS), "--end", END.isoformat(), "--offset-mode", "record",
        "--latency-p50-ms", str(p50_ms), "--latency-p99-ms", str(p99_ms), "--cache-records", str(size + 1000),
    ]  # fmt: skip
    from bench.scratch import simulator_url

    with simulator_url(command, str(ROOT)) as url:
        yield url


if __name__ == "__main__":
    main()
