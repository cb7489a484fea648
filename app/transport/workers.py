"""Which Dramatiq worker process this is, and whether another one is still alive.

A worker process is identified by its broker's id: Dramatiq's Redis broker names each process's acks sets after
it and records its heartbeats under ``<namespace>:__heartbeats__`` (a sorted set scored by the last heartbeat in
milliseconds). A worker whose heartbeat is older than the heartbeat timeout is dead for Dramatiq: the sweep hands
its fetched messages to other workers, so anything it held (an email claim, a lock) may be taken over.
"""

from __future__ import annotations

import time

import dramatiq.broker
import redis
from dramatiq.brokers.redis import RedisBroker

from app.constants import DRAMATIQ_HEARTBEAT_TIMEOUT_MS
from app.redis_client import dramatiq_key, get_broker_redis

#: Sorted set of Dramatiq broker ids scored by their last heartbeat (ms since the epoch).
HEARTBEATS_KEY = dramatiq_key("__heartbeats__")


def current_worker_id() -> str | None:
    """This process's Dramatiq broker id, or None when its global broker is not a Redis broker (or not set)."""
    broker = dramatiq.broker.global_broker
    if isinstance(broker, RedisBroker):
        return str(broker.broker_id)
    return None


def worker_is_alive(worker_id: str, client: redis.Redis[bytes] | None = None) -> bool:
    """Whether ``worker_id`` heartbeated within the heartbeat timeout, i.e. Dramatiq has not given it up yet.

    Read by default from the Redis of this process's broker, where the heartbeats are: with ``BROKER_URL`` on
    another Redis than ``REDIS_URL``, the latter holds none, and every worker would look dead.
    """
    if client is None:
        broker = dramatiq.broker.global_broker
        client = broker.client if isinstance(broker, RedisBroker) else get_broker_redis()
    score = client.zscore(HEARTBEATS_KEY, worker_id)
    if score is None:
        return False
    return time.time() * 1000 - float(score) < DRAMATIQ_HEARTBEAT_TIMEOUT_MS


def live_worker_ids(client: redis.Redis[bytes] | None = None) -> list[str]:
    """Dramatiq broker ids with a heartbeat younger than the heartbeat timeout."""
    now_ms = time.time() * 1000
    ids = (client or get_broker_redis()).zrangebyscore(
        HEARTBEATS_KEY, now_ms - DRAMATIQ_HEARTBEAT_TIMEOUT_MS, "+inf"
    )
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


def beat(broker: RedisBroker) -> None:
    """Record a Dramatiq heartbeat for ``broker``'s worker id now.

    Dramatiq heartbeats only inside its dispatch script, i.e. when a consumer fetches; a worker whose threads
    are all busy with long jobs fetches nothing and would look dead after the heartbeat timeout.
    """
    broker.client.zadd(f"{broker.namespace}:__heartbeats__", {broker.broker_id: int(time.time() * 1000)})
