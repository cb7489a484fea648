"""Prometheus counters and histograms per queue and actor (names in :mod:`app.metrics`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from app import metrics
from app.middleware.outcome import DEAD, RETRYING, SKIPPED, SUCCEEDED, outcome


@dataclass(frozen=True)
class _ActorMetrics:
    """One actor's labelled children, looked up once (``labels()`` takes a lock and hashes on every call)."""

    active: Any
    duration: Any
    retries: Any
    dead: Any
    processed: dict[str, Any]


class Metrics(Middleware):
    """Counts each attempt once, by outcome; retries and dead letters are counted here and nowhere else."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._children: dict[tuple[str, str], _ActorMetrics] = {}

    def _for(self, message: MessageProxy) -> _ActorMetrics:
        key = (message.queue_name.removesuffix(".DQ"), message.actor_name)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = _ActorMetrics(
                active=metrics.ACTIVE_JOBS.labels(*key),
                duration=metrics.JOB_DURATION.labels(*key),
                retries=metrics.JOB_RETRIES.labels(*key),
                dead=metrics.DEAD_LETTERS.labels(*key),
                processed={
                    s: metrics.JOBS_PROCESSED.labels(*key, s) for s in (SUCCEEDED, RETRYING, DEAD, SKIPPED)
                },
            )
        return children

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self._for(message).active.inc()
        self._local.started = time.perf_counter()

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        children = self._for(message)
        status = outcome(message, exception)
        children.active.dec()
        children.duration.observe(time.perf_counter() - self._local.started)
        children.processed[status].inc()
        if status == RETRYING:
            children.retries.inc()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        children = self._for(message)
        children.active.dec()
        children.processed[SKIPPED].inc()

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        self._for(message).dead.inc()
