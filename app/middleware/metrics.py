"""Prometheus counters and histograms per queue and actor (names in :mod:`app.metrics`)."""

from __future__ import annotations

import threading
import time
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from app import metrics
from app.middleware.outcome import RETRYING, SKIPPED, outcome


class Metrics(Middleware):
    """Counts each attempt once, by outcome; retries and dead letters are counted here and nowhere else."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        labels = _labels(message)
        metrics.ACTIVE_JOBS.labels(*labels).inc()
        self._local.started = time.perf_counter()

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        labels = _labels(message)
        status = outcome(message, exception)
        metrics.ACTIVE_JOBS.labels(*labels).dec()
        metrics.JOB_DURATION.labels(*labels).observe(time.perf_counter() - self._local.started)
        metrics.JOBS_PROCESSED.labels(*labels, status).inc()
        if status == RETRYING:
            metrics.JOB_RETRIES.labels(*labels).inc()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        labels = _labels(message)
        metrics.ACTIVE_JOBS.labels(*labels).dec()
        metrics.JOBS_PROCESSED.labels(*labels, SKIPPED).inc()

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        metrics.DEAD_LETTERS.labels(*_labels(message)).inc()


def _labels(message: MessageProxy) -> tuple[str, str]:
    return message.queue_name.removesuffix(".DQ"), message.actor_name
