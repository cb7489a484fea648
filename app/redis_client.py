"""The process's Redis client for the platform's own keys (locks, heartbeats, idempotency marks, stats)."""

from __future__ import annotations

import functools

import redis

from app.constants import DRAMATIQ_NAMESPACE, KEY_PREFIX


@functools.cache
def client_for(url: str) -> redis.Redis[bytes]:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)


def get_redis() -> redis.Redis[bytes]:
    """The client of ``REDIS_URL`` (cached per process)."""
    from app.settings import get_settings

    return client_for(get_settings().redis_url)


def get_broker_redis() -> redis.Redis[bytes]:
    """The client of the broker's Redis (``BROKER_URL``, by default ``REDIS_URL``), where Dramatiq's own keys live:
    queues, acks, heartbeats. With a RabbitMQ broker there are none; the platform's Redis is returned, whose
    Dramatiq keys are simply empty."""
    from app.settings import get_settings

    url = get_settings().effective_broker_url
    return client_for(url) if url.startswith(("redis://", "rediss://", "unix://")) else get_redis()


def platform_key(*parts: str) -> str:
    """A key under the platform's prefix, e.g. ``jobs:heartbeat:email:host:123``."""
    return ":".join((KEY_PREFIX, *parts))


def dramatiq_key(name: str) -> str:
    """A key under Dramatiq's namespace, e.g. ``dramatiq:email.XQ``."""
    return f"{DRAMATIQ_NAMESPACE}:{name}"
