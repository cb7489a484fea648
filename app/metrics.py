"""The Prometheus metrics (their names are public: dashboards and alerts use them; README "Observability").

Only metrics that some module emits are declared here (``tests/unit/test_metrics_emitted.py`` fails otherwise):
a metric that is declared but never set reads as a healthy zero on a dashboard. A feature's metric arrives with
the code that emits it.

Worker processes write to the multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, set by ``jobs worker``
before any process imports this module); queue gauges are computed from Redis at scrape time by
:class:`QueueCollector` in the process that serves ``/metrics``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

JOBS_PROCESSED = Counter(
    "worker_jobs_processed", "Messages processed, by outcome", ["queue", "actor", "status"]
)
JOB_DURATION = Histogram(
    "worker_job_duration_seconds",
    "Time spent in the actor",
    ["queue", "actor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
ACTIVE_JOBS = Gauge(
    "worker_active_jobs", "Messages being processed now", ["queue", "actor"], multiprocess_mode="livesum"
)
JOB_RETRIES = Counter("worker_job_retries", "Retries scheduled", ["queue", "actor"])
DEAD_LETTERS = Counter("worker_dead_letters", "Messages dead-lettered", ["queue", "actor"])
EMAILS_SENT = Counter("worker_emails_sent", "Emails by kind and outcome", ["queue", "kind", "status"])
#: kind: opportunities_page, opportunities_run, entities_page, analytics, cleanup; status: succeeded, failed, ...
SYNC_OPERATIONS = Counter(
    "worker_sync_operations", "Sync queue operations by kind and outcome", ["queue", "kind", "status"]
)
#: Admin logins refused: ``reason`` is wrong_password or locked (throttled); app/admin/auth.py.
ADMIN_LOGIN_FAILURES = Counter("admin_login_failures", "Admin logins refused, by reason", ["reason"])
#: outcome: processed (read the first time), deduplicated (bytes seen before), rejected, retrying.
ATTACHMENTS_PROCESSED = Counter(
    "worker_attachments_processed", "Attachment downloads by outcome", ["queue", "outcome"]
)
#: Documents written (app/documents/storage.py): kind report/export/attachment/...; status ready, retrying, failed.
DOCUMENTS_WRITTEN = Counter(
    "worker_documents", "Documents by kind, format and outcome", ["queue", "kind", "format", "status"]
)
#: Set by every spend of the shared SAM.gov budget (app/sync/quota.py): the latest figure of any process wins.
SAMGOV_QUOTA_REMAINING = Gauge(
    "worker_samgov_quota_remaining",
    "SAM.gov requests left today (the daily quota shared by every worker)",
    multiprocess_mode="mostrecent",
)

#: The scheduler sidecar (app/scheduler/): fires by outcome, their lag behind the trigger, who leads.
SCHEDULE_LAST_RUN = Gauge(
    "worker_schedule_last_run_timestamp_seconds",
    "Fire time (Unix seconds) of the last fire of each schedule that was enqueued",
    ["schedule"],
    multiprocess_mode="max",
)
SCHEDULE_FIRES = Counter(
    "worker_schedule_fires",
    "Schedule fires by status (enqueued, manual, skipped, missed, failed)",
    ["schedule", "status"],
)
SCHEDULE_FIRE_LAG = Histogram(
    "worker_schedule_fire_lag_seconds",
    "Seconds from a fire's scheduled time to its enqueue",
    ["schedule"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
SCHEDULER_LEADER = Gauge(
    "worker_scheduler_leader",
    "1 while this scheduler replica holds the leader lock",
    ["replica"],
    multiprocess_mode="max",
)


class QueueCollector(Collector):
    """``worker_queue_size{state}`` and ``worker_queue_oldest_message_age_seconds``, read from Redis per scrape.

    Costs O(1) Redis commands per queue (plus one per live worker for in-progress), whatever the queue length.
    """

    def __init__(self, queues: Iterable[str]) -> None:
        self.queues = tuple(queues)

    def collect(self) -> Iterable[Metric]:
        from app.transport import queue_stats

        size = GaugeMetricFamily(
            "worker_queue_size", "Messages per queue and state", labels=["queue", "state"]
        )
        age = GaugeMetricFamily(
            "worker_queue_oldest_message_age_seconds", "Age of the oldest ready message", labels=["queue"]
        )
        for stats in queue_stats(self.queues):
            for state in ("ready", "delayed", "in_progress", "dead"):
                size.add_metric([stats.queue, state], getattr(stats, state))
            age.add_metric([stats.queue], stats.oldest_age_seconds)
        yield size
        yield age


def render_latest(queues: Iterable[str] = ()) -> bytes:
    """The text exposition: every process's metrics (multiprocess mode) plus queue gauges from Redis.

    Each call builds its own registry (the documented way for multiprocess mode), so concurrent scrapes share
    nothing; outside multiprocess mode this process's default registry is rendered first.
    """
    registry = CollectorRegistry()
    head = b""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        head = generate_latest(REGISTRY)
    queue_list = tuple(queues)
    if queue_list:
        registry.register(QueueCollector(queue_list))
    return head + generate_latest(registry)
