"""The platform's consumer on real Redis: woken by enqueues instead of sleeping, and returning after a
reconnect what its predecessor held (docs/dramatiq.md "Idle pickup and reconnects")."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from queue import PriorityQueue
from typing import Any

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.common import current_millis, dq_name

from app.constants import DRAMATIQ_NAMESPACE
from app.transport import leave_unacked, wakeup
from app.transport.maintenance import unfinished_message_ids
from app.transport.publish import publish
from app.transport.redis_broker import PlatformRedisBroker, build_redis_broker
from tests.conftest import REDIS_URL
from tests.integration.test_transport_contract import (
    broker_kwargs,
    dispatches,
    normalized,
    recording_client,
)
from tests.support.helpers import wait_for

pytestmark = pytest.mark.integration

QUEUE = "wakeup_test"
#: A wait far longer than any test: a consumer that returns before it was woken, not timed out.
LONG_WAIT_MS = 60_000


@pytest.fixture
def broker(redis_client: redis.Redis) -> Iterator[PlatformRedisBroker]:
    built = build_redis_broker(REDIS_URL)
    built.declare_queue(QUEUE)
    yield built
    built.client.close()
    built.waiting_client.close()


def message(n: int = 0) -> Message[Any]:
    return Message(queue_name=QUEUE, actor_name="noop", args=(n,), kwargs={}, options={})


def tokens(client: redis.Redis, queue: str) -> int:
    return int(client.llen(wakeup.wakeup_key(DRAMATIQ_NAMESPACE, queue)))


def take(consumer: Any, count: int) -> list[MessageProxy]:
    """``count`` messages from ``consumer`` (polled; each empty turn is one short wait)."""
    taken: list[MessageProxy] = []

    def more() -> bool:
        proxy = next(consumer)
        if proxy is not None:
            taken.append(proxy)
        return len(taken) >= count

    wait_for(more, timeout=20, interval=0, what=f"{count} messages")
    return taken


@dataclass(order=True)
class Delayed:
    """An item of Dramatiq's consumer-thread delay queue: ordered by eta, carrying the message."""

    priority: int
    message: MessageProxy = field(compare=False)


class Next(threading.Thread):
    """Calls ``next(consumer)`` once in a thread of its own, as Dramatiq's consumer thread does."""

    def __init__(self, consumer: Any) -> None:
        super().__init__(daemon=True)
        self.consumer = consumer
        self.result: MessageProxy | None = None

    def run(self) -> None:
        self.result = next(self.consumer)


def test_every_enqueue_path_signals_the_queue_the_message_lands_on(
    broker: PlatformRedisBroker, redis_client: redis.Redis
) -> None:
    # When one message is enqueued ready, one delayed, and a batch of 100 ready ones is published
    broker.enqueue(message())
    broker.enqueue(message(), delay=60_000)
    publish([(message(n), None) for n in range(100)], broker=broker)
    # Then the ready queue got one token per message up to the cap, the delay queue one, and both expire
    assert tokens(redis_client, QUEUE) == wakeup.MAX_TOKENS
    assert tokens(redis_client, dq_name(QUEUE)) == 1
    ttl = redis_client.pttl(wakeup.wakeup_key(DRAMATIQ_NAMESPACE, QUEUE))
    assert 0 < ttl <= wakeup.TOKEN_TTL_MS


def test_single_enqueue_sends_dramatiq_own_dispatch(redis_client: redis.Redis) -> None:
    # Given Dramatiq's broker and the platform's, both recording what they send
    from dramatiq.brokers.redis import RedisBroker

    theirs_sent: list[Any] = []
    ours_sent: list[Any] = []
    stock = RedisBroker(client=recording_client(theirs_sent), **broker_kwargs(0))
    ours = PlatformRedisBroker(client=recording_client(ours_sent), **broker_kwargs(0))
    # When each enqueues the same ready and delayed message
    ready, delayed = message(), message(1)
    for each in (stock, ours):
        each.enqueue(ready)
        each.enqueue(delayed, delay=5_000)
    # Then the platform sent Dramatiq's dispatch calls unchanged (its wake-up signals ride along)
    assert [normalized(c, ours) for c in dispatches(ours_sent)] == [
        normalized(c, stock) for c in dispatches(theirs_sent)
    ]
    assert tokens(redis_client, QUEUE) == 1 and tokens(redis_client, dq_name(QUEUE)) == 1
    stock.client.close()
    ours.client.close()


def test_an_idle_consumer_is_woken_by_an_enqueue(
    broker: PlatformRedisBroker, redis_client: redis.Redis
) -> None:
    # Given a consumer that found its queue empty and now waits up to a minute (its waiting connection is newer
    # than every connection open now: another test's consumer still blocked on this server is not mistaken for it)
    newest_before = max(int(c["id"]) for c in redis_client.client_list())
    consumer = broker.consume(QUEUE, prefetch=2, timeout=LONG_WAIT_MS)
    waiting = Next(consumer)
    waiting.start()
    wait_for(
        lambda: any(c["cmd"] == "blpop" and int(c["id"]) > newest_before for c in redis_client.client_list()),
        what="the consumer to block",
    )
    # When a message is enqueued
    broker.enqueue(message(7))
    # Then the wait ends (woken, not timed out) and the next call fetches the message
    waiting.join(20)
    assert not waiting.is_alive() and waiting.result is None
    [proxy] = take(consumer, 1)
    assert proxy.args == (7,)
    consumer.close()


def test_a_delay_queue_consumer_wakes_for_its_earliest_eta(
    broker: PlatformRedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a delay-queue consumer whose thread holds a message due in 200 ms, and an empty delay queue in Redis
    held: PriorityQueue[Any] = PriorityQueue()
    monkeypatch.setattr(threading.current_thread(), "delay_queue", held, raising=False)
    consumer = broker.consume(dq_name(QUEUE), prefetch=10, timeout=LONG_WAIT_MS)
    held.put(Delayed(current_millis() + 200, MessageProxy(message())))
    # When it looks for more and finds nothing, its wait ends by the eta instead of after a minute
    waiting = Next(consumer)
    waiting.start()
    waiting.join(20)
    assert not waiting.is_alive() and waiting.result is None
    consumer.close()


def test_a_restarted_consumer_requeues_what_its_predecessor_had_prefetched(
    broker: PlatformRedisBroker, redis_client: redis.Redis
) -> None:
    # Given a consumer that fetched five messages and handed one out (it is being worked on)
    for n in range(5):
        broker.enqueue(message(n))
    first = broker.consume(QUEUE, prefetch=5, timeout=100)
    [working] = take(first, 1)
    assert len(unfinished_message_ids(broker, QUEUE)) == 5
    # When a connection error makes the consumer thread drop it and create another
    first.close()
    second = broker.consume(QUEUE, prefetch=5, timeout=100)
    # Then the four it had only prefetched come back at once; the one being worked on stays fetched
    again = take(second, 4)
    assert sorted(p.args[0] for p in again) == [1, 2, 3, 4]
    assert working.options["redis_message_id"] in unfinished_message_ids(broker, QUEUE)
    # ... and is acked normally afterwards
    for proxy in [working, *again]:
        second.ack(proxy)
    second.close()
    assert unfinished_message_ids(broker, QUEUE) == []
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{QUEUE}") == 0


def test_a_restarted_delay_consumer_requeues_what_the_dropped_delay_queue_held(
    broker: PlatformRedisBroker, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three delayed messages fetched into the consumer thread's in-memory delay queue
    thread = threading.current_thread()
    monkeypatch.setattr(thread, "delay_queue", PriorityQueue(), raising=False)
    for n in range(3):
        broker.enqueue(message(n), delay=60_000)
    first = broker.consume(dq_name(QUEUE), prefetch=10, timeout=100)
    fetched = take(first, 3)
    for proxy in fetched:
        thread.delay_queue.put(Delayed(proxy.options["eta"], proxy))  # type: ignore[attr-defined]
    # When a connection error replaces that delay queue (Dramatiq issue #527), here keeping one message
    first.close()
    kept = next(p for p in fetched if p.args == (0,))
    replacement: PriorityQueue[Any] = PriorityQueue()
    replacement.put(Delayed(kept.options["eta"], kept))
    monkeypatch.setattr(thread, "delay_queue", replacement)
    second = broker.consume(dq_name(QUEUE), prefetch=10, timeout=100)
    # Then the two that were dropped are fetched again; the one still held stays fetched, not duplicated
    again = take(second, 2)
    assert sorted(p.args[0] for p in again) == [1, 2]
    assert sorted(unfinished_message_ids(broker, dq_name(QUEUE))) == sorted(
        p.options["redis_message_id"] for p in fetched
    )
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{dq_name(QUEUE)}") == 0
    second.close()


def test_a_consumer_opened_beside_another_requeues_nothing(
    broker: PlatformRedisBroker, redis_client: redis.Redis
) -> None:
    # Given a message another consumer of this process fetched and still holds (two open consumers, as when a
    # worker is built twice in one process)
    broker.enqueue(message())
    holder = broker.consume(QUEUE, prefetch=1, timeout=100)
    take(holder, 1)
    # When a second consumer opens while the first is open
    other = broker.consume(QUEUE, prefetch=1, timeout=100)
    assert next(other) is None
    # Then it did not take the held message back
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{QUEUE}") == 0
    assert len(unfinished_message_ids(broker, QUEUE)) == 1
    other.close()
    holder.close()


def test_a_message_left_unacked_stays_fetched(broker: PlatformRedisBroker) -> None:
    # Given a fetched message whose follow-up could not be stored
    broker.enqueue(message())
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    [proxy] = take(consumer, 1)
    assert leave_unacked(broker, proxy)
    # When the worker acks it and its acks are flushed
    consumer.ack(proxy)
    consumer.close()
    # Then it is still in this worker's acks set: it returns to the queue when the worker stops or dies
    assert unfinished_message_ids(broker, QUEUE) == [proxy.options["redis_message_id"]]


def test_the_sweep_wakes_the_queues_of_a_dead_worker(
    broker: PlatformRedisBroker, redis_client: redis.Redis
) -> None:
    from app.transport.maintenance import sweep_dead_workers

    # Given a sweep while every worker is alive: nothing to wake
    sweep_dead_workers(broker, (QUEUE,))
    assert tokens(redis_client, QUEUE) == 0
    # Given a worker that fetched a message and went silent past the heartbeat timeout
    dead = build_redis_broker(REDIS_URL)
    dead.enqueue(message())
    take(dead.consume(QUEUE, prefetch=1, timeout=100), 1)
    silent_since = current_millis() - dead.heartbeat_timeout - 1_000
    redis_client.zadd(f"{DRAMATIQ_NAMESPACE}:__heartbeats__", {dead.broker_id: silent_since})
    redis_client.delete(wakeup.wakeup_key(DRAMATIQ_NAMESPACE, QUEUE))
    # When a live worker sweeps
    sweep_dead_workers(broker, (QUEUE,))
    # Then the message is back and the queue's idle consumers are woken for it
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{QUEUE}") == 1
    assert tokens(redis_client, QUEUE) == wakeup.MAX_TOKENS
    dead.client.close()
