"""Wake-up keys: an enqueue signals its queue, so an idle consumer blocks on Redis instead of sleeping.

Dramatiq's consumer sleeps up to ``worker_timeout`` (1 s) when a fetch comes back empty, so the first message
after a quiet spell waits for the end of that sleep (docs/dramatiq.md "Idle pickup and reconnects"). Here every
enqueue path also pushes a token on ``<namespace>:__wakeup__.<queue>`` (the queue the message lands on: a delayed
message wakes the ``.DQ`` consumer, which must fetch it to know its eta; a due one, moved to its queue, wakes
that queue's), and an idle consumer waits for a token with ``BLPOP``. One token wakes one waiting consumer: a
batch pushes one per message, up to :data:`MAX_TOKENS`. The list is trimmed to that many tokens and expires
after :data:`TOKEN_TTL_MS`, so tokens that no consumer was waiting for cost at most a few extra fetches.

A token is a hint, not the message: a consumer that wakes and finds nothing (another process fetched it) just
waits again; a message put back without a token (a dead worker's, requeued by Dramatiq's maintenance script)
is found by the fetch a consumer makes at least every :data:`app.transport.consumer.SAFETY_FETCH_S`.
"""

from __future__ import annotations

from typing import Any

import redis

#: Tokens kept per queue: enough to wake every consumer of a queue at once on a busy deployment.
MAX_TOKENS = 64
#: Tokens nobody waited for are dropped after this long.
TOKEN_TTL_MS = 60_000
#: The socket timeout of the waiting connections (a partitioned network fails a wait instead of hanging it);
#: a wait is cut to :data:`LONGEST_WAIT_S` to stay inside it.
SOCKET_TIMEOUT_S = 30.0
LONGEST_WAIT_S = 25.0


def wakeup_key(namespace: str, queue_name: str) -> str:
    return f"{namespace}:__wakeup__.{queue_name}"


def add_signal(pipe: Any, namespace: str, queue_name: str, count: int = 1) -> None:
    """Queue on ``pipe`` the commands that wake up to ``count`` consumers of ``queue_name`` (3 commands)."""
    key = wakeup_key(namespace, queue_name)
    pipe.lpush(key, *(["1"] * max(1, min(count, MAX_TOKENS))))
    pipe.ltrim(key, 0, MAX_TOKENS - 1)
    pipe.pexpire(key, TOKEN_TTL_MS)


def waiting_client(client: redis.Redis[Any]) -> redis.Redis[Any]:
    """A client for blocking waits, on a pool of its own: each waiting consumer thread (two per queue: the queue
    and its delay queue) holds one of its connections for up to the worker timeout, so the pool that enqueues
    and acks is never short of one. Its socket timeout is longer than any wait."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["socket_timeout"] = SOCKET_TIMEOUT_S
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def wait(client: redis.Redis[Any], namespace: str, queue_name: str, timeout_s: float) -> bool:
    """Block up to ``timeout_s`` for a token of ``queue_name``; True when one came (something was enqueued)."""
    if timeout_s <= 0:
        return False
    timeout = min(max(timeout_s, 0.01), LONGEST_WAIT_S)
    return client.blpop([wakeup_key(namespace, queue_name)], timeout=timeout) is not None
