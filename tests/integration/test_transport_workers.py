"""Worker liveness is read where Dramatiq keeps its heartbeats: the broker's Redis, also when ``BROKER_URL``
names another Redis than ``REDIS_URL`` (an email claim of a live worker must not look like a dead worker's)."""

from __future__ import annotations

import dramatiq.broker
import pytest

from app.transport.redis_broker import build_redis_broker
from app.transport.workers import beat, worker_is_alive
from tests.support.redis_server import RedisServer, owned_redis  # noqa: F401  (a fixture)


def test_liveness_is_read_from_the_brokers_redis(
    platform_env: dict[str, str],
    owned_redis: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given this process's broker on a Redis of its own, apart from REDIS_URL's (the test's database)
    broker = build_redis_broker(owned_redis.url())
    monkeypatch.setattr(dramatiq.broker, "global_broker", broker)
    try:
        # When its worker heartbeats (into the broker's Redis only)
        beat(broker)

        # Then it is alive, and a worker that never heartbeated is not
        assert worker_is_alive(broker.broker_id)
        assert not worker_is_alive("a-worker-that-never-beat")
    finally:
        broker.client.close()
