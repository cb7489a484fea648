"""Everything that knows the broker's storage layout, so that no other module reaches into Dramatiq's internals.

Dramatiq's Redis broker keeps its queues, acks and heartbeats in keys and a Lua script whose argument list is not
a public API (docs/dramatiq.md "Redis layout"). The modules here are the only ones that read those keys, call that
script or subclass Dramatiq's private consumer; ``tests/integration/test_transport_contract.py`` checks that what
they send is what Dramatiq's own code sends, and ``pyproject.toml`` pins the Dramatiq minor version it checked.
The rest of the platform (the admin, metrics, the CLI, middleware) calls the small functions exported below; a
RabbitMQ implementation would sit beside the Redis one behind the same names.
"""

from __future__ import annotations

from app.transport.redis_broker import leave_unacked
from app.transport.registry import WorkerInfo, live_workers
from app.transport.stats import QueueStats, queue_stats
from app.transport.workers import current_worker_id, worker_is_alive

__all__ = [
    "QueueStats",
    "WorkerInfo",
    "current_worker_id",
    "leave_unacked",
    "live_workers",
    "queue_stats",
    "worker_is_alive",
]
