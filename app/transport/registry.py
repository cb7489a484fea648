"""The platform's registry of live worker processes: one key per (queue, host, pid) with a TTL, and an index.

- ``jobs:heartbeat:<queue>:<host>:<pid>`` holds the worker's JSON description and expires unless refreshed;
  ``jobs health worker`` and the admin's worker list read it.
- ``jobs:workers`` is a sorted set of those key names scored by when they expire: finding live workers costs
  O(live workers), not a SCAN of a keyspace that also holds millions of idempotency marks.

Dramatiq's own liveness (``<namespace>:__heartbeats__``, which decides when a worker's messages are requeued)
is :mod:`app.transport.workers`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from app.redis_client import get_redis, platform_key

logger = logging.getLogger(__name__)

#: Sorted set of heartbeat key names scored by when they expire (seconds since the epoch).
WORKERS_KEY = platform_key("workers")


def heartbeat_key(queue: str, host: str, pid: int) -> str:
    return platform_key("heartbeat", queue, host, str(pid))


def live_heartbeat_keys(
    client: redis.Redis[bytes], queue: str | None = None, host: str | None = None
) -> list[str]:
    """Heartbeat keys (``jobs:heartbeat:<queue>:<host>:<pid>``) not yet expired, optionally of a queue and host."""
    live = [m.decode(errors="replace") for m in client.zrangebyscore(WORKERS_KEY, time.time(), "+inf")]

    def wanted(key: str) -> bool:
        parts = key.split(":")
        if len(parts) < 5:  # not a heartbeat key name: never trusted to have its fields
            return False
        return (queue is None or parts[2] == queue) and (host is None or parts[3] == host)

    return [key for key in live if wanted(key)]


def record_heartbeats(
    client: redis.Redis[bytes], queues: Iterable[str], host: str, pid: int, info: dict[str, Any], ttl_s: int
) -> None:
    """Refresh this worker's key of every queue and its place in the index; drop expired index entries."""
    body = json.dumps(info)
    pipe = client.pipeline(transaction=False)
    now = time.time()
    for queue in queues:
        key = heartbeat_key(queue, host, pid)
        pipe.set(key, body, ex=ttl_s)
        pipe.zadd(WORKERS_KEY, {key: now + ttl_s})
    pipe.zremrangebyscore(WORKERS_KEY, "-inf", now)
    pipe.execute()


def remove_heartbeats(client: redis.Redis[bytes], queues: Iterable[str], host: str, pid: int) -> None:
    """A stopping worker leaves the registry at once rather than when its keys expire."""
    keys = [heartbeat_key(queue, host, pid) for queue in queues]
    if keys:
        pipe = client.pipeline(transaction=False)
        pipe.delete(*keys)
        pipe.zrem(WORKERS_KEY, *keys)
        pipe.execute()


@dataclass(frozen=True)
class WorkerInfo:
    """One worker process, merged from its per-queue heartbeat keys."""

    host: str
    pid: int
    queues: tuple[str, ...]
    threads: int
    started: float | None
    expires_in_s: int | None

    @property
    def uptime_s(self) -> float | None:
        return max(0.0, time.time() - self.started) if self.started else None


def live_workers(client: redis.Redis[bytes] | None = None) -> list[WorkerInfo]:
    """Live workers (heartbeat keys expire after their TTL), sorted by host and pid.

    The index names the live heartbeat keys (no keyspace SCAN); values and TTLs come back in one pipeline.
    """
    client = client or get_redis()
    keys = sorted(live_heartbeat_keys(client))
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.ttl(key)
    results = pipe.execute()
    merged: dict[tuple[str, int], WorkerInfo] = {}
    for key, body, ttl in zip(keys, results[0::2], results[1::2], strict=True):
        info = _parse_heartbeat(key, body, ttl)
        if info is None:
            continue
        ident = (info.host, info.pid)
        if ident in merged:
            before = merged[ident]
            info = WorkerInfo(
                info.host,
                info.pid,
                tuple(sorted({*before.queues, *info.queues})),
                max(before.threads, info.threads),
                info.started or before.started,
                _soonest(before.expires_in_s, info.expires_in_s),
            )
        merged[ident] = info
    return sorted(merged.values(), key=lambda w: (w.host, w.pid))


def _soonest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _parse_heartbeat(key: bytes | str, body: bytes | None, ttl: int) -> WorkerInfo | None:
    """A heartbeat's JSON, or the key's own parts when the JSON is missing or malformed; None when even those
    do not parse. Anything can be in Redis, so no value may raise here (the admin's pages list workers)."""
    name = key.decode(errors="replace") if isinstance(key, bytes) else key
    parts = name.split(":")  # jobs:heartbeat:<queue>:<host>:<pid>
    if len(parts) < 5 or body is None:
        return None
    queue, host, pid = parts[2], ":".join(parts[3:-1]), parts[-1]
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        decoded = None
    if not isinstance(decoded, dict):
        logger.warning("malformed worker heartbeat", extra={"key": name})
        decoded = {}
    data: dict[str, Any] = decoded
    try:
        started = float(data["started"]) if data.get("started") else None
        queues = data.get("queues") or ()
        info = WorkerInfo(
            host=str(data.get("host") or host)[:255],
            pid=int(data.get("pid") or pid),
            queues=tuple(sorted({queue, *(str(q) for q in (queues if isinstance(queues, list) else ()))})),
            threads=int(data.get("threads") or 0),
            started=started if started is not None and math.isfinite(started) and started > 0 else None,
            expires_in_s=ttl if ttl >= 0 else None,
        )
    except (TypeError, ValueError, OverflowError):
        logger.warning("malformed worker heartbeat", extra={"key": name})
        return None
    if not (0 < info.pid < 2**63 and 0 <= info.threads < 2**31):
        logger.warning("malformed worker heartbeat", extra={"key": name})
        return None
    return info
