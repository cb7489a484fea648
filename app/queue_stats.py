"""Queue statistics from Dramatiq's Redis layout at O(1) commands per queue (DRAMATIQ-NOTES.md).

In-progress costs one SCARD per live worker; everything else is LLEN/ZCARD/LINDEX/HGET, pipelined.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from app.constants import DRAMATIQ_HEARTBEAT_TIMEOUT_MS
from app.redis_client import dramatiq_key, get_redis


@dataclass(frozen=True)
class QueueStats:
    queue: str
    ready: int
    delayed: int
    in_progress: int
    dead: int
    oldest_age_seconds: float


def live_worker_ids(client: redis.Redis[bytes]) -> list[str]:
    """Dramatiq broker ids with a heartbeat younger than the heartbeat timeout."""
    now_ms = time.time() * 1000
    ids = client.zrangebyscore(dramatiq_key("__heartbeats__"), now_ms - DRAMATIQ_HEARTBEAT_TIMEOUT_MS, "+inf")
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


def queue_stats(queues: Iterable[str], client: redis.Redis[bytes] | None = None) -> list[QueueStats]:
    client = client or get_redis()
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
    stats: list[QueueStats] = []
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
    for q, ready, delayed, dead, in_progress in raw:
        stats.append(QueueStats(q, ready, delayed, in_progress, dead, _age_seconds(bodies.get(q), now_ms)))
    return stats


def _age_seconds(body: bytes | None, now_ms: float) -> float:
    if not body:
        return 0.0
    try:
        timestamp = float(json.loads(body)["message_timestamp"])
    except (ValueError, KeyError, TypeError):
        return 0.0
    return max(0.0, (now_ms - timestamp) / 1000)
