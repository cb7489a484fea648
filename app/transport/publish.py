"""Putting messages on the broker without importing any actor: what the enqueue helpers and requeues use.

Inside a worker the process's full broker (``app.broker``) is reused; elsewhere (the web app, the CLI) a bare
broker without middleware is built once. On Redis a batch goes through one pipelined round trip of Dramatiq's
own ``dispatch`` script (:func:`app.transport.dispatch.dispatch_pipelined`), so the Redis layout stays exactly
Dramatiq's; each message gets what ``RedisBroker.enqueue`` gives it (a fresh redis id, and an eta on the delay
queue when delayed), and the queues it lands on are signalled in the same round trip, so that idle consumers
start at once (:mod:`app.transport.wakeup`).
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import dramatiq
import dramatiq.broker
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name

from app.transport.dispatch import dispatch_pipelined

#: A message and its delay in milliseconds (None: ready now).
Outgoing = tuple[Message[Any], int | None]


@functools.cache
def _bare_broker(url: str) -> dramatiq.Broker:
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=[])
    from app.transport.redis_broker import build_redis_broker

    return build_redis_broker(url)


def get_publisher() -> dramatiq.Broker:
    """The broker to publish with: the worker's own when one is set up in this process, else a bare one."""
    existing = dramatiq.broker.global_broker
    if existing is not None:
        return existing
    from app.settings import get_settings

    return _bare_broker(get_settings().effective_broker_url)


def publish(outgoing: Sequence[Outgoing], broker: dramatiq.Broker | None = None) -> list[Message[Any]]:
    """Send every message; on Redis in one pipelined round trip. Returns the messages as stored."""
    broker = broker or get_publisher()
    if not isinstance(broker, RedisBroker) or len(outgoing) == 1:
        return [broker.enqueue(message, delay=delay) for message, delay in outgoing]
    return _pipelined(broker, outgoing)


def _pipelined(broker: RedisBroker, outgoing: Sequence[Outgoing]) -> list[Message[Any]]:
    sent: list[Message[Any]] = []
    calls: list[tuple[str, list[object]]] = []
    for message, delay in outgoing:
        queue_name = message.queue_name
        options: dict[str, object] = {"redis_message_id": str(uuid.uuid4())}
        if delay is not None:
            queue_name = dq_name(queue_name)
            options["eta"] = current_millis() + delay
        stored = message.copy(queue_name=queue_name, options=options)
        calls.append((queue_name, [options["redis_message_id"], stored.encode()]))
        sent.append(stored)
    dispatch_pipelined(broker, "enqueue", calls, wake=Counter(name for name, _ in calls))
    return sent
