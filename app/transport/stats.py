"""Queue statistics from Dramatiq's Redis layout at O(1) commands per queue (docs/dramatiq.md "Redis layout").

In-progress costs one SCARD per live worker (its acks sets); everything else is LLEN/HLEN/ZCARD/LINDEX/HGET,
pipelined.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from app.redis_client import dramatiq_key, get_broker_redis
from app.transport.workers import live_worker_ids


@dataclass(frozen=True)
class QueueStats:
    queue: str
    #: On the queue, ready to be fetched.
    ready: int
    #: Delayed (retries, ``delay=``) and not yet due, including those a worker holds until their eta.
    delayed: int
    #: Fetched by a live worker and not acked yet.
    in_progress: int
    #: In Dramatiq's dead-letter set (XQ), not yet imported into the archive.
    dead: int
    #: Age of the oldest ready message (0 when the queue is empty).
    oldest_age_seconds: float


def queue_stats(queues: Iterable[str], client: redis.Redis[bytes] | None = None) -> list[QueueStats]:
    """One :class:`QueueStats` per queue, in the order given: the live workers, then two pipelined round trips
    (the counts; the oldest bodies, when some queue is not empty)."""
    client = client or get_broker_redis()
    names = list(queues)
    workers = live_worker_ids(client)
    pipe = client.pipeline(transaction=False)
    for q in names:
        pipe.llen(dramatiq_key(q))
        pipe.hlen(dramatiq_key(f"{q}.DQ.msgs"))
        pipe.zcard(dramatiq_key(f"{q}.XQ"))
        pipe.lindex(dramatiq_key(q), 0)
        for worker in workers:
            pipe.scard(dramatiq_key(f"__acks__.{worker}.{q}"))
    results = pipe.execute()
    oldest_ids: dict[str, bytes] = {}
    pos = 0
    raw: list[tuple[str, int, int, int, int]] = []
    for q in names:
        ready, delayed, dead, oldest = results[pos : pos + 4]
        in_progress = sum(results[pos + 4 : pos + 4 + len(workers)])
        pos += 4 + len(workers)
        if oldest is not None:
            oldest_ids[q] = oldest
        raw.append((q, ready, delayed, dead, in_progress))
    bodies: dict[str, bytes | None] = {}
    if oldest_ids:
        pipe = client.pipeline(transaction=False)
        for q, message_id in oldest_ids.items():
            pipe.hget(dramatiq_key(f"{q}.msgs"), message_id)
        bodies = dict(zip(oldest_ids, pipe.execute(), strict=True))
    now_ms = time.time() * 1000
    return [
        QueueStats(q, ready, delayed, in_progress, dead, _age_seconds(bodies.get(q), now_ms))
        for q, ready, delayed, dead, in_progress in raw
    ]


def _age_seconds(body: bytes | None, now_ms: float) -> float:
    if not body:
        return 0.0
    try:
        timestamp = float(json.loads(body)["message_timestamp"])
    except (ValueError, KeyError, TypeError):
        return 0.0
    return max(0.0, (now_ms - timestamp) / 1000)
