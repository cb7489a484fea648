"""The transport package sends Redis what Dramatiq's own code sends: the contract behind the Dramatiq pin.

``app.transport`` calls Dramatiq's ``dispatch`` Lua script itself (pipelined enqueue, batched acks, the
dead-worker sweep), so it depends on that script's argument list, which is private to Dramatiq's Redis broker.
Each test here records the commands that reach the wire (a connection class that keeps what it packs) for
Dramatiq's own ``RedisBroker`` and for the platform's version of the same operation, normalizes what must
differ (timestamps, uuids, the worker id) and requires the same script SHA and the same arguments. A new Dramatiq
release that changes the script or its arguments fails here; ``pyproject.toml`` pins the minor version this was
written against (docs/dramatiq.md "What the transport package replaces").
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker, _scripts
from dramatiq.common import dq_name

from app.constants import DRAMATIQ_HEARTBEAT_TIMEOUT_MS, DRAMATIQ_NAMESPACE
from app.transport import redis_broker
from app.transport.maintenance import sweep_dead_workers
from app.transport.publish import publish
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

QUEUE = "contract"
#: Dramatiq's script that measures the Lua stack once per process (not part of any operation compared here).
MAXSTACK_SHA = hashlib.sha1(_scripts["maxstack"]).hexdigest()
Command = tuple[Any, ...]


def recording_client(sent: list[Command]) -> redis.Redis:
    """A client whose connections append every command they send to ``sent`` (single or pipelined)."""

    class Recording(redis.Connection):
        def send_command(self, *args: Any, **kwargs: Any) -> None:
            sent.append(args)
            super().send_command(*args, **kwargs)

        def pack_commands(self, commands: Any) -> Any:
            commands = list(commands)
            sent.extend(tuple(cmd) for cmd in commands)
            return super().pack_commands(commands)

    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(REDIS_URL, connection_class=Recording))


def broker_kwargs(maintenance_chance: int) -> dict[str, Any]:
    return {
        "namespace": DRAMATIQ_NAMESPACE,
        "heartbeat_timeout": DRAMATIQ_HEARTBEAT_TIMEOUT_MS,
        "maintenance_chance": maintenance_chance,
        "middleware": [],
    }


@pytest.fixture
def dramatiq_sent(redis_client: redis.Redis) -> list[Command]:
    # The script loaded up front, so that no call is sent twice around a NOSCRIPT answer.
    redis_client.script_load(_scripts["dispatch"])
    return []


@pytest.fixture
def platform_sent(redis_client: redis.Redis) -> list[Command]:
    return []


@pytest.fixture
def stock(dramatiq_sent: list[Command]) -> Iterator[RedisBroker]:
    """Dramatiq's own broker, never running maintenance unless a test asks for it."""
    broker = RedisBroker(client=recording_client(dramatiq_sent), **broker_kwargs(0))
    yield broker
    broker.client.close()


@pytest.fixture
def platform(platform_sent: list[Command]) -> Iterator[redis_broker.PlatformRedisBroker]:
    broker = redis_broker.PlatformRedisBroker(client=recording_client(platform_sent), **broker_kwargs(0))
    yield broker
    broker.client.close()


def dispatches(sent: Sequence[Command]) -> list[list[Any]]:
    """The EVALSHA calls among ``sent``, as str/int lists.

    Dramatiq's ``maxstack`` script (run once per process to size unpacking) is left out. A call answered
    ``NOSCRIPT`` (another test flushed the server's scripts) is sent again as it was: an exact
    repeat of the previous call is that retry, not a second call (every real call has its own id or queue).
    """
    calls: list[list[Any]] = []
    for command in sent:
        if str(_text(command[0])).upper() == "EVALSHA" and _text(command[1]) != MAXSTACK_SHA:
            call = [_text(part) for part in command[1:]]
            if not calls or calls[-1] != call:
                calls.append(call)
    return calls


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, memoryview):
        return bytes(value).decode()
    return value


def normalized(call: list[Any], broker: RedisBroker) -> list[Any]:
    """One dispatch call with its per-call values replaced by what they must be (checked here)."""
    sha, numkeys, namespace, command, timestamp, queue, worker, *rest = call
    assert abs(int(timestamp) - time.time() * 1000) < 60_000, timestamp
    assert worker == broker.broker_id
    tail = [_normalized_body(arg) for arg in rest]
    if command == "enqueue":
        uuid.UUID(tail[-2])  # the message's fresh redis id
        tail[-2] = "<redis id>"
    if command == "ack":
        uuid.UUID(tail[-1])
        tail[-1] = "<redis id>"
    return [sha, str(numkeys), namespace, command, "<now>", queue, "<worker id>", *(str(t) for t in tail)]


def _normalized_body(arg: Any) -> Any:
    """An encoded message with its redis id and eta (which differ per call) replaced by placeholders."""
    if not (isinstance(arg, str) and arg.startswith("{")):
        return arg
    body = json.loads(arg)
    options = body["options"]
    uuid.UUID(options["redis_message_id"])
    options["redis_message_id"] = "<redis id>"
    if "eta" in options:
        assert options["eta"] > body["message_timestamp"]
        options["eta"] = "<eta>"
    return json.dumps(body, sort_keys=True)


def messages() -> list[Message[Any]]:
    return [
        Message(queue_name=QUEUE, actor_name="contract_actor", args=(n,), kwargs={"n": n}, options={"k": n})
        for n in range(2)
    ]


def test_pipelined_enqueue_sends_what_redis_broker_enqueue_sends(
    stock: RedisBroker,
    platform: redis_broker.PlatformRedisBroker,
    dramatiq_sent: list[Command],
    platform_sent: list[Command],
    redis_client: redis.Redis,
) -> None:
    # Given the same two messages, one ready and one delayed by 5 s
    ready, delayed = messages()

    # When Dramatiq enqueues them one by one, and the platform in one pipelined batch
    stock.enqueue(ready)
    stock.enqueue(delayed, delay=5_000)
    publish([(ready, None), (delayed, 5_000)], broker=platform)

    # Then both sent the dispatch script by the same SHA with the same arguments
    theirs = [normalized(call, stock) for call in dispatches(dramatiq_sent)]
    ours = [normalized(call, platform) for call in dispatches(platform_sent)]
    assert len(theirs) == 2 and [call[3] for call in theirs] == ["enqueue", "enqueue"]
    assert [call[5] for call in theirs] == [QUEUE, dq_name(QUEUE)]
    assert ours == theirs
    # And Redis holds two copies of each, where Dramatiq puts them
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{QUEUE}") == 2
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{dq_name(QUEUE)}") == 2


def fetch_all(broker: RedisBroker, count: int) -> list[Any]:
    """``count`` messages through ``broker``'s own consumer (one prefetch)."""
    consumer = broker.consume(QUEUE, prefetch=count, timeout=100)
    fetched: list[Any] = []
    deadline = time.monotonic() + 10
    while len(fetched) < count:
        assert time.monotonic() < deadline, f"fetched {len(fetched)} of {count}"
        message = next(consumer)
        if message is not None:
            fetched.append(message)
    return [consumer, *fetched]


def test_batched_acks_send_what_the_redis_consumer_ack_sends(
    stock: RedisBroker,
    platform: redis_broker.PlatformRedisBroker,
    dramatiq_sent: list[Command],
    platform_sent: list[Command],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given three fetched messages for each broker, and platform acks that wait to be flushed together
    monkeypatch.setattr(redis_broker, "ACK_FLUSH_INTERVAL_S", 60.0)
    for _ in range(2):
        for message in messages() + messages()[:1]:
            stock.enqueue(message)
    stock_consumer, *stock_fetched = fetch_all(stock, 3)
    platform_consumer, *platform_fetched = fetch_all(platform, 3)
    dramatiq_sent.clear()
    platform_sent.clear()

    # When Dramatiq's consumer acks them, and the platform's consumer acks its three in one batch
    for message in stock_fetched:
        stock_consumer.ack(message)
    for message in platform_fetched:
        platform_consumer.ack(message)
    assert dispatches(platform_sent) == []  # queued, not sent yet
    platform_consumer.close()

    # Then the batch is three dispatch calls, each exactly what Dramatiq sends for one ack
    theirs = [normalized(call, stock) for call in dispatches(dramatiq_sent)]
    ours = [normalized(call, platform) for call in dispatches(platform_sent)]
    assert len(theirs) == 3 and {call[3] for call in theirs} == {"ack"}
    assert ours == theirs
    # And nothing is left fetched or stored
    assert redis_client.hlen(f"{DRAMATIQ_NAMESPACE}:{QUEUE}.msgs") == 0
    assert not redis_client.keys(f"{DRAMATIQ_NAMESPACE}:__acks__.*")
    stock_consumer.close()


def test_dead_worker_sweep_sends_what_dramatiq_maintenance_sends(
    platform: redis_broker.PlatformRedisBroker, platform_sent: list[Command], redis_client: redis.Redis
) -> None:
    # Given a worker that fetched a message and then went silent for longer than the heartbeat timeout
    dead = RedisBroker(**broker_kwargs(0), url=REDIS_URL)
    dead.enqueue(messages()[0])
    fetch_all(dead, 1)
    heartbeats = f"{DRAMATIQ_NAMESPACE}:__heartbeats__"
    long_ago = int(time.time() * 1000) - DRAMATIQ_HEARTBEAT_TIMEOUT_MS - 1_000
    redis_client.zadd(heartbeats, {dead.broker_id: long_ago})
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{QUEUE}") == 0

    # When Dramatiq's maintenance runs (a command that draws maintenance) and, separately, the platform's sweep
    maintaining_sent: list[Command] = []
    maintaining = RedisBroker(client=recording_client(maintaining_sent), **broker_kwargs(MAINTENANCE_SCALE))
    for name in (QUEUE, dq_name(QUEUE)):
        maintaining.do_qsize(name)
    sweep_dead_workers(platform, (QUEUE,))

    # Then the sweep sent Dramatiq's own maintenance call, by the same SHA with the same arguments
    theirs = [normalized(call, maintaining) for call in dispatches(maintaining_sent)]
    ours = [normalized(call, platform) for call in dispatches(platform_sent)]
    assert [(call[3], call[5], call[9]) for call in theirs] == [
        ("qsize", QUEUE, "1"),
        ("qsize", dq_name(QUEUE), "1"),
    ]
    assert ours == theirs
    # And the dead worker's message is back on its queue
    assert redis_client.llen(f"{DRAMATIQ_NAMESPACE}:{QUEUE}") == 1
    maintaining.client.close()
    dead.client.close()


def test_the_platform_sweep_alone_returns_a_dead_workers_message(
    platform: redis_broker.PlatformRedisBroker, redis_client: redis.Redis
) -> None:
    # Given a worker that fetched a message and went silent for longer than the heartbeat timeout
    dead = RedisBroker(**broker_kwargs(0), url=REDIS_URL)
    stored = dead.enqueue(messages()[0])
    fetch_all(dead, 1)
    heartbeats = f"{DRAMATIQ_NAMESPACE}:__heartbeats__"
    long_ago = int(time.time() * 1000) - DRAMATIQ_HEARTBEAT_TIMEOUT_MS - 1_000
    redis_client.zadd(heartbeats, {dead.broker_id: long_ago})

    # When the platform sweeps (Dramatiq's random maintenance is off on every broker here)
    sweep_dead_workers(platform, (QUEUE,))

    # Then the message is back on its queue and the dead worker is forgotten
    ids = [i.decode() for i in redis_client.lrange(f"{DRAMATIQ_NAMESPACE}:{QUEUE}", 0, -1)]
    assert ids == [stored.options["redis_message_id"]]
    assert redis_client.zscore(heartbeats, dead.broker_id) is None
    dead.client.close()
