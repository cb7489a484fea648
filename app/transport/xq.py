"""Dramatiq's dead-letter queues (XQ): what the dead-letter archive reads, drops and annotates.

A message that will not be retried is ``nack``ed by Dramatiq into its queue's XQ. The archive
(:mod:`app.dead_letters`, the ``dead_letters`` table) is the source of truth; the XQ only keeps a message while
the database is away. The rest of the platform uses five functions, the interface a RabbitMQ implementation
(whose dead letters are the ``<queue>.XQ`` queue) would provide beside this one:

- right after a nack, in the worker: :func:`drop_copy` once the archive holds the message, else
  :func:`annotate_copy` to keep the error with it;
- ``jobs dlq sync``: :func:`dead_letter_queues`, :func:`dead_messages` and :func:`remove`.

On Redis (docs/dramatiq.md "Redis layout") the XQ of queue ``q`` is ``<namespace>:q.XQ``, a sorted set of redis
message ids scored by when they died, and ``<namespace>:q.XQ.msgs``, a hash of those ids to encoded messages.
A delayed message (queue ``q.DQ``) dies into ``q.XQ``. Dramatiq's maintenance expires entries after the
broker's ``dead_message_ttl`` (7 days).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name, xq_name

from app.constants import QUEUES
from app.transport.messages import message_of

logger = logging.getLogger(__name__)

#: Dead messages read per round trip by :func:`dead_messages` (a ZSCAN page and one HMGET).
READ_BATCH = 500


@dataclass(frozen=True)
class DeadMessage:
    """One message in a dead-letter queue, as the transport stores it."""

    #: The canonical queue (``email``, also for a message that died on ``email.DQ``).
    queue: str
    #: What the transport knows the entry by, for :func:`remove` (on Redis: the redis message id).
    ref: str
    #: The encoded message; None when only the index entry is left (its body is gone).
    body: bytes | None


def _redis(broker: dramatiq.Broker) -> RedisBroker:
    if not isinstance(broker, RedisBroker):
        raise NotImplementedError(f"dead-letter queues of {type(broker).__name__} are not implemented")
    return broker


def _keys(broker: RedisBroker, queue: str) -> tuple[str, str]:
    """The XQ's index (sorted set) and bodies (hash) of ``queue`` or of its delay queue."""
    index = f"{broker.namespace}:{xq_name(queue)}"
    return index, f"{index}.msgs"


def dead_letter_queues(broker: dramatiq.Broker) -> list[str]:
    """The queues whose XQ may hold messages: the platform's queues and every queue ``broker`` declared.

    Named, not discovered: finding ``*.XQ`` keys would be a SCAN of a keyspace that also holds millions of
    idempotency marks. A message can only die on a queue some worker consumed, i.e. declared.
    """
    declared = {q_name(queue) for queue in broker.get_declared_queues()}
    return sorted({*QUEUES, *declared})


def dead_messages(
    broker: dramatiq.Broker, queues: Iterable[str], *, batch: int = READ_BATCH
) -> Iterator[DeadMessage]:
    """Every message in the XQs of ``queues``, ``batch`` at a time; each entry once.

    Safe to :func:`remove` entries while iterating: the sorted set is walked with ZSCAN, which returns every
    entry present for the whole walk (once here: repeats are filtered), whatever is removed meanwhile.
    """
    redis_broker = _redis(broker)
    client = redis_broker.client
    for queue in dict.fromkeys(q_name(q) for q in queues):
        index, bodies = _keys(redis_broker, queue)
        seen: set[bytes] = set()
        cursor = 0
        while True:
            cursor, entries = client.zscan(index, cursor, count=batch)
            fresh = [member for member, _score in entries if member not in seen]
            seen.update(fresh)
            if fresh:
                for member, body in zip(fresh, client.hmget(bodies, fresh), strict=True):
                    yield DeadMessage(queue, member.decode(), body)
            if cursor == 0:
                break


def remove(broker: dramatiq.Broker, queue: str, ref: str) -> None:
    """Drop one entry (its index and its body) from ``queue``'s XQ; an entry already gone is no error."""
    redis_broker = _redis(broker)
    index, bodies = _keys(redis_broker, queue)
    pipe = redis_broker.client.pipeline(transaction=False)
    pipe.zrem(index, ref)
    pipe.hdel(bodies, ref)
    pipe.execute()


def drop_copy(broker: dramatiq.Broker, message: MessageProxy) -> None:
    """Drop the XQ copy of ``message``, which the worker has just nacked and the archive now holds."""
    ref = message.options.get("redis_message_id")
    if ref:
        remove(broker, message.queue_name, str(ref))


def annotate_copy(broker: dramatiq.Broker, message: MessageProxy, options: Mapping[str, object]) -> bool:
    """Store ``options`` in the XQ copy of the just nacked ``message``, so that a later import has them.

    Returns whether the copy was rewritten. Nothing is written when the XQ has no entry for the message (Dramatiq
    moved nothing): a body without its index entry would never be read, nor expired. A Redis error is logged
    and reported as False, like a missing entry: the copy, if any, keeps the message without the extra options.
    """
    ref = message.options.get("redis_message_id")
    if not ref:
        return False
    redis_broker = _redis(broker)
    index, bodies = _keys(redis_broker, message.queue_name)
    enriched = message_of(message).copy(options=dict(options))
    try:
        if redis_broker.client.zscore(index, ref) is None:
            return False
        redis_broker.client.hset(bodies, ref, enriched.encode())
    except redis.RedisError:
        logger.warning(
            "could not annotate the XQ copy of a dead letter",
            extra={"queue": q_name(message.queue_name), "message_id": message.message_id},
            exc_info=True,
        )
        return False
    return True
