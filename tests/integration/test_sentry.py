"""Sentry from a real worker process, through sentry-sdk's real transport, into a local envelope server.

What leaves the worker is checked byte for byte: one error event per dead letter (grouped by actor and exception
type, tagged for search), retries only as breadcrumbs, and no API key, bearer token or email address anywhere in
what was sent.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import redis
from dramatiq import Message
from sqlalchemy import select

from app.db.models import DeadLetter
from app.db.session import session_scope
from app.testing.sentry_server import SentryServer, parse_envelope
from tests.support.helpers import TEST_QUEUE, send_test_message, wait_for
from tests.support.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.integration

EMAIL = "user@example.com"
API_KEY = "SECRET123"
TOKEN = "SG.abcdefghijklmnop.qrstuvwxyz0123456789"
URL = f"https://api.sam.gov/opportunities/v2/search?api_key={API_KEY}&limit=10"


@pytest.fixture
def sentry() -> Iterator[SentryServer]:
    with SentryServer() as server:
        yield server


@pytest.fixture
def sentry_worker(
    platform_env: dict[str, str], redis_client: redis.Redis, sentry: SentryServer, tmp_path: Path
) -> Iterator[WorkerProcess]:
    """Several threads: a message's attempts run on different threads, its breadcrumbs must still follow it."""
    env = {**platform_env, "SENTRY_DSN": sentry.dsn, "SENTRY_ENVIRONMENT": "test"}
    with running_worker(
        env, redis_client, tmp_path / "worker.log", modules=["tests.support.observability_actors"]
    ) as process:
        yield process


def send(actor: str, correlation_id: str, **kwargs: object) -> Message:
    return send_test_message(actor, options={"correlation_id": correlation_id}, **kwargs)


def dead_letter_both(
    worker: WorkerProcess, sentry: SentryServer, permanent_correlation: str, retryable_correlation: str
) -> tuple[Message, Message]:
    """A message that fails for good and one that fails three times, both archived and reported to Sentry.

    Their arguments carry an email address, an API key in a URL and a bearer token. The worker is stopped
    (exit 0) before returning: the SDK sends what it still holds at exit.
    """
    permanent = send("leaky_permanent", permanent_correlation, email=EMAIL, url=URL)
    retryable = send("leaky_retryable", retryable_correlation, email=EMAIL, token=TOKEN)
    wait_for(
        lambda: archived(permanent.message_id, retryable.message_id), timeout=30, what="two dead letters"
    )
    sentry.wait_for_events(2, timeout=15)
    assert worker.stop() == 0
    return permanent, retryable


def archived(*message_ids: str) -> bool:
    with session_scope() as session:
        found = set(
            session.scalars(select(DeadLetter.message_id).where(DeadLetter.message_id.in_(message_ids)))
        )
    return found == set(message_ids)


def event_for(events: list[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
    return [e for e in events if (e.get("tags") or {}).get("message_id") == message_id]


def retry_crumbs(event: dict[str, Any], actor: str) -> list[str]:
    crumbs = (event.get("breadcrumbs") or {}).get("values", [])
    return [
        c["message"] for c in crumbs if c.get("category") == "job.retry" and actor in c.get("message", "")
    ]


def test_one_error_event_per_dead_letter_with_tags_fingerprint_and_retry_breadcrumbs(
    sentry_worker: WorkerProcess, sentry: SentryServer, redis_client: redis.Redis
) -> None:
    # Given a message that fails for good and one that fails three times (max_retries=2)
    # When both are dead-lettered and the worker has exited (the SDK flushes at exit)
    permanent, retryable = dead_letter_both(sentry_worker, sentry, "req-perm", "req-retry")
    assert int(redis_client.get(f"test:count:leaky_retryable:{EMAIL}") or 0) == 3

    # Then exactly one error event per dead letter arrived: the two retried attempts sent none
    events = sentry.events
    assert len(events) == 2, [e.get("tags") for e in events]
    assert not sentry.errors
    (perm_event,) = event_for(events, permanent.message_id)
    (retry_event,) = event_for(events, retryable.message_id)
    for event, message, actor, exc_type, attempt, correlation_id in (
        (perm_event, permanent, "leaky_permanent", "PermanentError", "1", "req-perm"),
        (retry_event, retryable, "leaky_retryable", "RetryableError", "3", "req-retry"),
    ):
        assert event["level"] == "error"
        assert event["exception"]["values"][-1]["type"] == exc_type
        tags = event["tags"]
        assert tags["queue"] == TEST_QUEUE
        assert tags["actor"] == actor
        assert tags["message_id"] == message.message_id
        assert tags["correlation_id"] == correlation_id
        assert tags["attempt"] == attempt
        # And the fingerprint groups by actor and exception type
        assert actor in event["fingerprint"] and exc_type in event["fingerprint"]

    # And the retried attempts are breadcrumbs of the final event, one per attempt that was retried
    assert retry_crumbs(retry_event, "leaky_retryable") == [
        "leaky_retryable attempt 1 failed: RetryableError",
        "leaky_retryable attempt 2 failed: RetryableError",
    ]
    # And a permanent failure is not described as a retry
    assert retry_crumbs(perm_event, "leaky_permanent") == []


def test_no_secret_or_email_address_leaves_the_process(
    sentry_worker: WorkerProcess, sentry: SentryServer
) -> None:
    # Given jobs whose arguments, exception messages and log lines carry an API key in a URL, a bearer token
    # and an email address
    # When their events have been sent and the worker has exited
    dead_letter_both(sentry_worker, sentry, "req-leak-1", "req-leak-2")

    # Then the events still say what happened ...
    raw = sentry.raw
    events = sentry.events
    assert len(events) == 2
    assert b"SAM.gov refused" in raw and b"503 from upstream" in raw
    crumbs = [c for e in events for c in (e.get("breadcrumbs") or {}).get("values", [])]
    assert any("leaky_retryable attempt 1 failed" in str(c.get("message")) for c in crumbs)
    # ... but not one byte of the secrets or of the address, in any item of any envelope
    for needle in (API_KEY, TOKEN, "SG.abcdefgh", EMAIL, "example.com"):
        assert needle.encode() not in raw, needle
    assert b"[Filtered]" in raw


def test_server_decodes_gzip_brotli_and_plain_envelopes(sentry: SentryServer) -> None:
    # Given one envelope with an event item of announced length and an item without length
    event = {"event_id": uuid.uuid4().hex, "message": "line one\nline two", "level": "error"}
    payload = json.dumps(event).encode()
    body = b"\n".join(
        [
            json.dumps({"event_id": event["event_id"]}).encode(),
            json.dumps({"type": "event", "length": len(payload)}).encode(),
            payload,
            json.dumps({"type": "client_report"}).encode(),
            b'{"discarded_events": []}',
        ]
    )
    url = f"http://127.0.0.1:{sentry.port}/api/1/envelope/"

    # When it is posted plain, gzip- and brotli-compressed
    for encoding, data in (("", body), ("gzip", gzip.compress(body)), ("br", brotli.compress(body))):
        headers = {"Content-Type": "application/x-sentry-envelope"}
        if encoding:
            headers["Content-Encoding"] = encoding
        assert httpx.post(url, content=data, headers=headers, timeout=5).status_code == 200
    bad = httpx.post(url, content=b"not gzip", headers={"Content-Encoding": "gzip"}, timeout=5)

    # Then each decodes to the same event, the other item is kept but is not an event, and garbage is refused
    assert sentry.wait_for_events(3, timeout=5) == [event, event, event]
    assert [item.type for item in sentry.envelopes[0].items] == ["event", "client_report"]
    assert bad.status_code == 400 and len(sentry.errors) == 1
    assert sentry.dsn == f"http://public@127.0.0.1:{sentry.port}/1"
    assert parse_envelope(body).items[0].json() == event
