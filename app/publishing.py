"""Putting messages on Redis without importing any actor: what the enqueue helpers and requeues use.

Inside a worker the process's full broker (``app.broker``) is reused; elsewhere (the web app, the CLI) a bare
broker without middleware is built once. Batches go through one pipelined round trip by calling Dramatiq's own
``dispatch`` Lua script on a pipeline, so the Redis layout stays exactly Dramatiq's.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

import dramatiq
import dramatiq.broker
from dramatiq import Message
from dramatiq.common import current_millis, dq_name

from app.constants import DRAMATIQ_HEARTBEAT_TIMEOUT_MS, DRAMATIQ_NAMESPACE

#: A message and its delay in milliseconds (None: ready now).
Outgoing = tuple[Message[Any], int | None]


@functools.cache
def _bare_broker(url: str) -> dramatiq.Broker:
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=[])
    from app.redis_broker import PlatformRedisBroker

    return PlatformRedisBroker(
        url=url, middleware=[], namespace=DRAMATIQ_NAMESPACE, heartbeat_timeout=DRAMATIQ_HEARTBEAT_TIMEOUT_MS
    )


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
    from dramatiq.brokers.redis import RedisBroker

    if not isinstance(broker, RedisBroker) or len(outgoing) == 1:
        return [broker.enqueue(message, delay=delay) for message, delay in outgoing]
    return _pipelined(broker, outgoing)


def _pipelined(
    broker: dramatiq.brokers.redis.RedisBroker, outgoing: Sequence[Outgoing]
) -> list[Message[Any]]:
    from app.redis_broker import dispatch_pipelined

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
    dispatch_pipelined(broker, "enqueue", calls)
    return sent
