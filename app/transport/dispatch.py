"""Calls to Dramatiq's ``dispatch`` Lua script that Dramatiq itself makes only one at a time.

The script's argument list (``command, timestamp, queue, worker id, heartbeat timeout, dead message ttl,
do_maintenance, max unpack size, *command arguments``) is private to Dramatiq's Redis broker: it is built in one
place here, :func:`dispatch_arguments`, and ``tests/integration/test_transport_contract.py`` checks it against
what ``RedisBroker`` sends for the same command. Every call also records the caller's heartbeat, as Dramatiq's do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from redis.exceptions import NoScriptError

from app.transport import wakeup


def max_unpack_size(broker: RedisBroker) -> int:
    """How many values the script may unpack at once (half the Lua stack, discovered once per process)."""
    return int(broker._max_unpack_size())  # type: ignore[no-untyped-call]


def dispatch_arguments(
    broker: RedisBroker, command: str, queue_name: str, arguments: Sequence[object], *, maintenance: bool
) -> list[object]:
    """The script's ARGV for ``command`` on ``queue_name``, exactly as ``RedisBroker._dispatch`` builds it."""
    return [
        command,
        current_millis(),
        queue_name,
        broker.broker_id,
        broker.heartbeat_timeout,
        broker.dead_message_ttl,
        int(maintenance),
        max_unpack_size(broker),
        *arguments,
    ]


def dispatch_pipelined(
    broker: RedisBroker,
    command: str,
    calls: Sequence[tuple[str, Sequence[object]]],
    *,
    maintenance: bool = False,
    wake: Mapping[str, int] | None = None,
) -> list[Any]:
    """The script once per ``(queue, command arguments)``, all in one pipelined round trip: the Redis layout stays
    exactly Dramatiq's.

    The script is called by its SHA (``EVALSHA``), not as a redis-py ``Script`` object: a pipeline holding
    ``Script`` calls first asks ``SCRIPT EXISTS`` in a round trip of its own, which for a batch of two or three
    acks was half the cost. If Redis has lost its script cache (a restart, ``SCRIPT FLUSH``), nothing ran, the
    script is loaded and the batch sent once more.

    ``wake`` (queue name → messages put on it) adds, in the same round trip, the signals that wake that many
    idle consumers of each queue (:mod:`app.transport.wakeup`); the results are the script calls' only.
    """
    script: Any = broker.scripts["dispatch"]  # a redis-py Script: .sha and .script

    def send() -> list[Any]:
        pipe = broker.client.pipeline(transaction=False)
        for queue_name, arguments in calls:
            argv = dispatch_arguments(broker, command, queue_name, arguments, maintenance=maintenance)
            pipe.evalsha(script.sha, 1, broker.namespace, *argv)
        for queue_name, count in (wake or {}).items():
            wakeup.add_signal(pipe, broker.namespace, queue_name, count)
        return list(pipe.execute())[: len(calls)]

    try:
        return send()
    except NoScriptError:
        broker.client.script_load(script.script)
        return send()
