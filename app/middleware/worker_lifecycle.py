"""Worker heartbeats, the dead-worker sweep, and requeueing what a stopping worker could not finish.

- A key ``jobs:heartbeat:<queue>:<host>:<pid>`` with a TTL says this worker is alive (``jobs health worker``).
- Dramatiq only heartbeats when a consumer talks to Redis, so a worker busy with long jobs looks dead after
  60 s and its messages get duplicated; this thread heartbeats for it.
- Dramatiq sweeps dead workers' messages on 1 in 1000 commands (about 12 minutes when idle); this thread runs
  Dramatiq's own sweep for its queues every few seconds, so a crashed worker's messages return within 2 min.
- At shutdown, messages still fetched by this worker (jobs that outlived the shutdown timeout) are requeued.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name

from app.constants import DEAD_WORKER_SWEEP_INTERVAL_S, WORKER_HEARTBEAT_TTL_S
from app.redis_client import get_redis, platform_key

logger = logging.getLogger(__name__)


def heartbeat_key(queue: str, host: str, pid: int) -> str:
    return platform_key("heartbeat", queue, host, str(pid))


#: Sorted set of heartbeat key names scored by when they expire: finding live workers costs O(live workers),
#: not a SCAN of a keyspace that also holds millions of idempotency marks.
WORKERS_KEY = platform_key("workers")


def live_heartbeat_keys(
    client: redis.Redis[bytes], queue: str | None = None, host: str | None = None
) -> list[str]:
    """Heartbeat keys (``jobs:heartbeat:<queue>:<host>:<pid>``) not yet expired, optionally of a queue and host."""
    live = [m.decode() for m in client.zrangebyscore(WORKERS_KEY, time.time(), "+inf")]

    def wanted(key: str) -> bool:
        key_queue, key_host = key.split(":")[2:4]
        return (queue is None or key_queue == queue) and (host is None or key_host == host)

    return [key for key in live if wanted(key)]


class WorkerLifecycle(Middleware):
    def __init__(self, *, interval_s: float = WORKER_HEARTBEAT_TTL_S / 3) -> None:
        self.interval_s = interval_s
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
        self._beat(broker)
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="worker-heartbeat", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        try:
            self._requeue_unfinished(broker)
            keys = [heartbeat_key(q, socket.gethostname(), os.getpid()) for q in self._queues]
            if keys:
                get_redis().delete(*keys)
                get_redis().zrem(WORKERS_KEY, *keys)
        except redis.RedisError:
            logger.warning("could not requeue unfinished messages at shutdown; the sweep will")
        from app.observability import flush_logs

        flush_logs()

    def _run(self, broker: RedisBroker) -> None:
        last_sweep = 0.0
        while not self._stop.wait(self.interval_s):
            try:
                self._beat(broker)
                if time.monotonic() - last_sweep >= DEAD_WORKER_SWEEP_INTERVAL_S:
                    sweep_dead_workers(broker, self._queues)
                    last_sweep = time.monotonic()
            except redis.RedisError:
                logger.warning("heartbeat failed; Redis unreachable")

    def _beat(self, broker: RedisBroker) -> None:
        host, pid = socket.gethostname(), os.getpid()
        info = json.dumps(
            {
                "host": host,
                "pid": pid,
                "queues": self._queues,
                "threads": self._threads,
                "started": self._started,
            }
        )
        client = get_redis()
        pipe = client.pipeline(transaction=False)
        expires = time.time() + WORKER_HEARTBEAT_TTL_S
        for queue in self._queues:
            key = heartbeat_key(queue, host, pid)
            pipe.set(key, info, ex=WORKER_HEARTBEAT_TTL_S)
            pipe.zadd(WORKERS_KEY, {key: expires})
        pipe.zremrangebyscore(WORKERS_KEY, "-inf", time.time())
        pipe.execute()
        broker.client.zadd(f"{broker.namespace}:__heartbeats__", {broker.broker_id: current_millis()})

    def _requeue_unfinished(self, broker: RedisBroker) -> None:
        for queue in self._queues:
            for name in (queue, dq_name(queue)):
                acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{name}"
                ids = [i.decode() for i in broker.client.smembers(acks)]
                if ids:
                    logger.warning("requeueing unfinished messages", extra={"queue": name, "count": len(ids)})
                    broker.do_requeue(name, *ids)


def sweep_dead_workers(broker: RedisBroker, queues: tuple[str, ...]) -> None:
    """Run Dramatiq's own maintenance step (requeue dead workers' acks) for each queue and its delay queue."""
    dispatch = broker.scripts["dispatch"]
    for queue in queues:
        for name in (queue, dq_name(queue)):
            dispatch(
                keys=[broker.namespace],
                args=[
                    "qsize",
                    current_millis(),
                    name,
                    broker.broker_id,
                    broker.heartbeat_timeout,
                    broker.dead_message_ttl,
                    1,
                    broker._max_unpack_size(),  # type: ignore[no-untyped-call]
                ],
            )
