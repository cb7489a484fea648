"""Dramatiq's dead-letter queues through ``app.transport.xq``, and the archive that reads them, on real Redis.

Messages are dead-lettered by Dramatiq's own code (a bare ``RedisBroker``'s consumer ``nack``), so these tests
also check that the transport reads what Dramatiq writes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import select

from app import dead_letters
from app.constants import QUEUES
from app.db.models import DeadLetter
from app.db.session import dispose_engines, session_scope
from app.errors import PermanentError
from app.middleware.dead_letter import DeadLetterArchive
from app.transport import queue_stats, xq
from app.transport.messages import message_of
from tests.conftest import REDIS_URL
from tests.support.helpers import TEST_QUEUE, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(redis_client: redis.Redis) -> Iterator[RedisBroker]:
    """Dramatiq's own Redis broker (no middleware) on the test database, with the test queue declared."""
    built = RedisBroker(url=REDIS_URL, middleware=[])
    built.declare_queue(TEST_QUEUE)
    yield built
    built.close()


def nacked(broker: RedisBroker, *, delay_ms: int | None = None, **kwargs: object) -> MessageProxy:
    """A message enqueued, fetched and nacked by Dramatiq, as its worker does with one it will not retry."""
    message = broker.enqueue(
        Message(queue_name=TEST_QUEUE, actor_name="noop", args=(), kwargs=kwargs, options={}), delay=delay_ms
    )
    consumer = broker.consume(message.queue_name, prefetch=1, timeout=100)
    try:
        proxy = next(proxy for proxy in consumer if proxy is not None)
        proxy.fail()
        consumer.nack(proxy)
    finally:
        consumer.close()
    return proxy


def failing() -> PermanentError:
    """An exception with a traceback through this module, as an actor's would have."""
    try:
        raise PermanentError("user 5 vanished")
    except PermanentError as err:
        return err


def archived() -> list[DeadLetter]:
    with session_scope() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def test_reads_what_dramatiq_dead_lettered_and_drops_it(broker: RedisBroker) -> None:
    # Given one message dead-lettered from the queue and one from its delay queue
    ready = nacked(broker, n=1)
    delayed = nacked(broker, delay_ms=60_000, n=2)

    # When the transport reads the queue's XQ
    found = list(xq.dead_messages(broker, [TEST_QUEUE]))

    # Then both are there under the queue's name, with their bodies
    assert {(d.queue, d.ref) for d in found} == {
        (TEST_QUEUE, ready.options["redis_message_id"]),
        (TEST_QUEUE, delayed.options["redis_message_id"]),
    }
    decoded = {Message.decode(d.body).message_id for d in found if d.body is not None}
    assert decoded == {ready.message_id, delayed.message_id}
    assert queue_stats([TEST_QUEUE])[0].dead == 2

    # When the worker drops the copy of one (archived) and the sync removes the other
    xq.drop_copy(broker, delayed)
    xq.remove(broker, TEST_QUEUE, ready.options["redis_message_id"])

    # Then the XQ is empty
    assert list(xq.dead_messages(broker, [TEST_QUEUE])) == []
    assert queue_stats([TEST_QUEUE])[0].dead == 0


def test_walks_a_large_xq_once_while_entries_are_removed(
    broker: RedisBroker, redis_client: redis.Redis
) -> None:
    # Given 300 dead messages (more than Redis keeps in a compact sorted set) and an index entry without a body
    ids = [f"r-{i}" for i in range(300)]
    pipe = redis_client.pipeline()
    for i, ref in enumerate(ids):
        pipe.zadd(f"dramatiq:{TEST_QUEUE}.XQ", {ref: i})
        pipe.hset(f"dramatiq:{TEST_QUEUE}.XQ.msgs", ref, b"body-" + ref.encode())
    pipe.zadd(f"dramatiq:{TEST_QUEUE}.XQ", {"orphan": 0})
    pipe.execute()

    # When they are read 50 at a time, each removed as soon as it is read
    seen = []
    for dead in xq.dead_messages(broker, [TEST_QUEUE], batch=50):
        seen.append((dead.ref, dead.body))
        xq.remove(broker, dead.queue, dead.ref)

    # Then every one was read exactly once, with its body (None for the orphan), and none is left
    assert sorted(seen, key=lambda pair: pair[0]) == sorted(
        [(ref, b"body-" + ref.encode()) for ref in ids] + [("orphan", None)], key=lambda pair: pair[0]
    )
    assert redis_client.zcard(f"dramatiq:{TEST_QUEUE}.XQ") == 0
    assert redis_client.hlen(f"dramatiq:{TEST_QUEUE}.XQ.msgs") == 0


def test_dead_letter_queues_are_the_platforms_and_the_declared_ones(broker: RedisBroker) -> None:
    broker.declare_queue("reports")

    assert xq.dead_letter_queues(broker) == sorted({*QUEUES, TEST_QUEUE, "reports"})


def test_annotating_a_message_that_is_not_in_the_xq_writes_nothing(
    broker: RedisBroker, redis_client: redis.Redis
) -> None:
    # Given a message fetched but never nacked (Dramatiq moved nothing)
    broker.enqueue(Message(queue_name=TEST_QUEUE, actor_name="noop", args=(), kwargs={}, options={}))
    consumer = broker.consume(TEST_QUEUE, prefetch=1, timeout=100)
    proxy = next(proxy for proxy in consumer if proxy is not None)
    consumer.close()

    # When the archive tries to keep its error in the XQ copy
    written = xq.annotate_copy(broker, proxy, {"dead_reason": "failed"})

    # Then no body without an index entry is left behind (nothing would ever read or expire it)
    assert written is False
    assert redis_client.hlen(f"dramatiq:{TEST_QUEUE}.XQ.msgs") == 0


def test_archive_drops_the_xq_copy_once_the_row_is_stored(
    platform_env: dict[str, str], broker: RedisBroker
) -> None:
    proxy = nacked(broker, user_id=4)
    proxy.stuff_exception(failing())

    DeadLetterArchive().after_nack(broker, proxy)

    (row,) = archived()
    assert (row.message_id, row.exception_type, row.reason) == (proxy.message_id, "PermanentError", "failed")
    assert list(xq.dead_messages(broker, [TEST_QUEUE])) == []


def test_with_the_database_away_the_xq_keeps_the_error_and_sync_imports_it(
    platform_env: dict[str, str], broker: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.settings import reset_settings

    # Given a message dead-lettered with an error while PostgreSQL does not answer
    proxy = nacked(broker, user_id=5)
    error = failing()
    proxy.stuff_exception(error)
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    reset_settings()
    dispose_engines()
    DeadLetterArchive().after_nack(broker, proxy)

    # Then the XQ copy carries the error
    (dead,) = xq.dead_messages(broker, [TEST_QUEUE])
    assert dead.body is not None
    options = Message.decode(dead.body).options
    assert (options["dead_exception_type"], options["dead_exception_message"]) == (
        "PermanentError",
        "user 5 vanished",
    )

    # When the database is back and the dead letters are synced
    monkeypatch.setenv("DATABASE_URL", platform_env["DATABASE_URL"])
    reset_settings()
    dispose_engines()
    imported = dead_letters.sync_from_xq(broker)

    # Then the archive holds the message with the error and the fingerprint it would have had, and the XQ is empty
    assert imported == 1
    (row,) = archived()
    direct = dead_letters.record_from_message(message_of(proxy), error, "failed")
    assert (row.message_id, row.reason, row.exception_type, row.exception_message) == (
        proxy.message_id,
        "failed",
        "PermanentError",
        "user 5 vanished",
    )
    assert row.fingerprint == direct.fingerprint
    assert row.traceback and "failing" in row.traceback
    assert list(xq.dead_messages(broker, [TEST_QUEUE])) == []


def test_sync_imports_undecodable_and_skips_bodiless_entries(
    platform_env: dict[str, str], broker: RedisBroker, redis_client: redis.Redis
) -> None:
    # Given a decodable dead message on a declared queue, an undecodable one and an index entry without a body
    good = nacked(broker, user_id=6)
    redis_client.zadd(f"dramatiq:{TEST_QUEUE}.XQ", {"poison": 1, "orphan": 2})
    redis_client.hset(f"dramatiq:{TEST_QUEUE}.XQ.msgs", "poison", b"\xff not json")

    # When synced with the queues left to the transport (no queues named)
    imported = dead_letters.sync_from_xq(broker)

    # Then both messages are archived and nothing is left in the XQ
    assert imported == 2
    rows = {row.message_id: row for row in archived()}
    assert set(rows) == {good.message_id, "undecodable:poison"}
    assert rows[good.message_id].reason == "imported_from_xq"
    assert rows["undecodable:poison"].raw_payload is not None
    assert redis_client.zcard(f"dramatiq:{TEST_QUEUE}.XQ") == 0
