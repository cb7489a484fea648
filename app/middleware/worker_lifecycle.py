"""Worker heartbeats, the dead-worker sweep, and requeueing what a stopping worker could not finish.

- A key ``jobs:heartbeat:<queue>:<host>:<pid>`` with a TTL says this worker is alive (``jobs health worker``,
  the admin's worker list).
- Dramatiq only heartbeats when a consumer fetches, so a worker busy with long jobs would look dead after the
  heartbeat timeout and its messages be duplicated; this thread heartbeats for it every few seconds, from boot
  until the worker has stopped (a graceful stop may wait for running jobs longer than the timeout).
- Dramatiq sweeps dead workers' messages on 1 in 1000 commands (about 17 minutes when idle); this thread runs
  Dramatiq's own sweep for its queues every few seconds, so a crashed worker's messages return within 30 s
  (docs/dramatiq.md "Crash recovery").
- At shutdown, messages still fetched by this worker (jobs that outlived the shutdown timeout) are requeued.

Everything that touches Dramatiq's keys is in :mod:`app.transport`; this middleware only decides when.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker

from app.constants import (
    DEAD_WORKER_SWEEP_INTERVAL_S,
    DRAMATIQ_HEARTBEAT_INTERVAL_S,
    WORKER_HEARTBEAT_TTL_S,
)
from app.redis_client import get_redis
from app.transport import registry
from app.transport.maintenance import requeue_unfinished, sweep_dead_workers
from app.transport.workers import beat

logger = logging.getLogger(__name__)


class WorkerLifecycle(Middleware):
    def __init__(
        self,
        *,
        interval_s: float = WORKER_HEARTBEAT_TTL_S / 3,
        tick_s: float = DRAMATIQ_HEARTBEAT_INTERVAL_S,
        sweep_interval_s: float = DEAD_WORKER_SWEEP_INTERVAL_S,
    ) -> None:
        #: Seconds between refreshes of the platform's heartbeat keys.
        self.interval_s = interval_s
        #: Seconds between Dramatiq heartbeats (the loop's period).
        self.tick_s = min(tick_s, interval_s, sweep_interval_s)
        self.sweep_interval_s = sweep_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queues: tuple[str, ...] = ()
        self._threads = 0
        self._started = time.time()

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        whitelist = worker.consumer_whitelist
        self._queues = tuple(
            sorted(q for q in broker.get_declared_queues() if not whitelist or q in whitelist)
        )
        self._threads = worker.worker_threads
        self._stop.clear()
        self._register()
        beat(broker)
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="worker-heartbeat", daemon=True
        )
        self._thread.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.tick_s + 5)
        if not isinstance(broker, RedisBroker):
            return
        try:
            requeue_unfinished(broker, self._queues)
            registry.remove_heartbeats(get_redis(), self._queues, socket.gethostname(), os.getpid())
        except redis.RedisError:
            logger.warning("could not requeue unfinished messages at shutdown; the sweep will")
        from app.observability import flush_logs

        flush_logs()

    def _run(self, broker: RedisBroker) -> None:
        # The first tick sweeps: a worker started to replace a crashed one returns its messages at once.
        last_register, last_sweep = time.monotonic(), float("-inf")
        while not self._stop.wait(self.tick_s):
            try:
                beat(broker)
                now = time.monotonic()
                if now - last_register >= self.interval_s:
                    self._register()
                    last_register = now
                if now - last_sweep >= self.sweep_interval_s:
                    sweep_dead_workers(broker, self._queues)
                    last_sweep = now
            except redis.RedisError:
                logger.warning("heartbeat failed; Redis unreachable")

    def _register(self) -> None:
        host, pid = socket.gethostname(), os.getpid()
        info = {
            "host": host,
            "pid": pid,
            "queues": self._queues,
            "threads": self._threads,
            "started": self._started,
        }
        registry.record_heartbeats(get_redis(), self._queues, host, pid, info, WORKER_HEARTBEAT_TTL_S)
