"""Names that messages in flight, deployments and dashboards depend on. Change none of them lightly."""

from __future__ import annotations

#: Queue for email sending and the reminder/summary dispatchers (I/O bound).
EMAIL_QUEUE = "email"
#: Queue for PDF/XLSX/CSV generation and attachment processing (CPU and memory bound).
DOCUMENTS_QUEUE = "documents"
#: Queue for SAM.gov synchronisation, analytics and cleanup.
SYNC_QUEUE = "sync"
#: Every queue the platform owns, in the order operators see them.
QUEUES: tuple[str, ...] = (EMAIL_QUEUE, DOCUMENTS_QUEUE, SYNC_QUEUE)

#: Dramatiq's own Redis namespace (its lists, hashes, acks and heartbeats live under it).
DRAMATIQ_NAMESPACE = "dramatiq"
#: Prefix of the platform's own Redis keys (worker heartbeats, idempotency marks, locks).
KEY_PREFIX = "jobs"

#: Worker defaults per queue: (processes, threads). See docs/architecture.md.
WORKER_DEFAULTS: dict[str, tuple[int, int]] = {
    # I/O-bound: a send waits 100-600 ms on SendGrid. Thread sweep of bench/email_throughput.py at production
    # latency (docs/benchmarks.md, 2026-12-06): 8/16/32/64 threads sent 43/84/154/169 emails/s from one process
    # (0.96/0.94/0.87/0.47 of threads / mean latency); past 32 the process is CPU-bound (0.7-0.8 of a core).
    EMAIL_QUEUE: (1, 32),
    DOCUMENTS_QUEUE: (2, 1),
    SYNC_QUEUE: (1, 4),
}
#: Default port of each worker group's /metrics and /health server.
WORKER_HTTP_PORTS: dict[str, int] = {EMAIL_QUEUE: 9191, DOCUMENTS_QUEUE: 9192, SYNC_QUEUE: 9193}

#: Seconds a worker heartbeat key lives; the worker refreshes it every third of that.
WORKER_HEARTBEAT_TTL_S = 30
#: Milliseconds without a Dramatiq heartbeat after which a worker's fetched messages are requeued. With the sweep
#: below, a crashed worker's messages are back within timeout + sweep interval (docs/dramatiq.md "Crash recovery").
DRAMATIQ_HEARTBEAT_TIMEOUT_MS = 15_000
#: Seconds between the Dramatiq heartbeats a worker sends for itself (busy or not): five per timeout.
DRAMATIQ_HEARTBEAT_INTERVAL_S = 3
#: Seconds between the sweeps that return crashed workers' messages (Dramatiq's own sweep is 1 in 1000 calls).
DEAD_WORKER_SWEEP_INTERVAL_S = 5
#: Seconds an idempotency mark of a finished job is kept in Redis.
IDEMPOTENCY_MARK_TTL_S = 7 * 24 * 3600
