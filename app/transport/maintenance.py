"""Returning messages that a worker fetched and will never finish: a dead worker's, and a stopping worker's.

Dramatiq requeues a dead worker's acks only during "maintenance", which a dispatch call runs with a chance of 1 in
1,000: on an idle queue about 17 minutes (docs/dramatiq.md "Crash recovery"). :func:`sweep_dead_workers` runs
that same maintenance step on purpose, every few seconds, from each live worker.
"""

from __future__ import annotations

import logging

from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name

from app.transport import wakeup
from app.transport.dispatch import dispatch_pipelined

logger = logging.getLogger(__name__)


def sweep_dead_workers(broker: RedisBroker, queues: tuple[str, ...]) -> None:
    """Requeue the acks of every worker silent for the heartbeat timeout, for each queue and its delay queue.

    One pipelined round trip of Dramatiq's own maintenance (``qsize`` with ``do_maintenance=1``): the requeue and
    the removal of the dead worker's heartbeat stay Dramatiq's code. It also expires old XQ entries, as
    Dramatiq's maintenance does.
    """
    calls = [(name, ()) for queue in queues for name in (queue, dq_name(queue))]
    if not calls:
        return
    # A requeue sends no wake-up signal of its own: when a worker is dead, the same round trip wakes the idle
    # consumers of these queues (app.transport.wakeup), so its messages start now, not at their next safety fetch.
    cutoff = current_millis() - broker.heartbeat_timeout
    dead = broker.client.zcount(f"{broker.namespace}:__heartbeats__", 0, cutoff)
    wake = {name: wakeup.MAX_TOKENS for name, _ in calls} if dead else None
    dispatch_pipelined(broker, "qsize", calls, maintenance=True, wake=wake)


def unfinished_message_ids(broker: RedisBroker, queue_name: str) -> list[str]:
    """Redis ids this process fetched from ``queue_name`` and has not acked (its acks set)."""
    acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"
    return [i.decode() if isinstance(i, bytes) else str(i) for i in broker.client.smembers(acks)]


def requeue_unfinished(broker: RedisBroker, queues: tuple[str, ...]) -> int:
    """Put back what this stopping worker still holds (jobs that outlived the shutdown timeout); returns how many.

    Dramatiq requeues only the messages its consumer threads had prefetched; a job still running when the
    shutdown timeout ends stays in the acks set until this worker's heartbeat expires.
    """
    total = 0
    for queue in queues:
        for name in (queue, dq_name(queue)):
            ids = unfinished_message_ids(broker, name)
            if ids:
                logger.warning("requeueing unfinished messages", extra={"queue": name, "count": len(ids)})
                broker.do_requeue(name, *ids)
                total += len(ids)
    return total
