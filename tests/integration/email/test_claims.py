"""The claim protocol in email_log on PostgreSQL: insert wins once, live claims hold, lapsed ones are taken."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update

from app.db import migrate
from app.db.models import EmailLog
from app.db.session import session_scope
from app.db.types import utcnow
from app.email import claims
from app.email.claims import ClaimHeld, ClaimRequest, ClaimResult
from app.errors import RateLimited
from app.middleware.retry_policy import RetrySettings, decide
from app.settings import reset_settings
from app.transport.workers import HEARTBEATS_KEY
from tests.support.helpers import free_port

pytestmark = pytest.mark.integration

REQUEST = ClaimRequest(key="welcome:1", kind="welcome", user_id=1, recipient="a@example.com")


def row(key: str = REQUEST.key) -> EmailLog:
    with session_scope() as session:
        return session.execute(select(EmailLog).where(EmailLog.idempotency_key == key)).scalar_one()


def expire(key: str = REQUEST.key) -> None:
    with session_scope() as session:
        session.execute(
            update(EmailLog)
            .where(EmailLog.idempotency_key == key)
            .values(lease_expires_at=utcnow() - dt.timedelta(1))
        )


def test_first_claim_wins_and_a_live_claim_holds(platform_env: dict[str, str]) -> None:
    assert claims.claim(REQUEST) is ClaimResult.CLAIMED
    with pytest.raises(ClaimHeld):
        claims.claim(REQUEST)
    assert row().status == "claimed" and row().attempts == 1


def test_concurrent_claims_have_one_winner(platform_env: dict[str, str]) -> None:
    def attempt(_: int) -> str:
        try:
            return claims.claim(REQUEST).value
        except ClaimHeld:
            return "held"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count("claimed") == 1 and results.count("held") == 15


def test_sent_and_skipped_keys_are_done(platform_env: dict[str, str]) -> None:
    claims.claim(REQUEST)
    claims.mark_sent(REQUEST.key, "sg-1")
    assert claims.claim(REQUEST) is ClaimResult.DONE
    assert row().provider_message_id == "sg-1" and row().sent_at is not None
    other = ClaimRequest(key="welcome:2", kind="welcome", user_id=2, recipient=None)
    assert claims.record_skip(other, "no_address") is True
    assert claims.claim(other) is ClaimResult.DONE
    assert claims.record_skip(other, "no_address") is False
    assert row(other.key).skip_reason == "no_address"


def test_a_lapsed_or_failed_claim_is_taken_over(platform_env: dict[str, str]) -> None:
    claims.claim(REQUEST)
    expire()
    assert claims.claim(REQUEST) is ClaimResult.CLAIMED
    assert row().attempts == 2
    claims.release(REQUEST.key, failed_reason="SendGrid 400: bad address")
    assert (row().status, row().skip_reason) == ("failed", "SendGrid 400: bad address")
    assert claims.claim(REQUEST) is ClaimResult.CLAIMED and row().attempts == 3


def test_a_transient_release_makes_the_key_claimable_at_once(platform_env: dict[str, str]) -> None:
    claims.claim(REQUEST)
    claims.release(REQUEST.key)
    assert row().status == "claimed"
    assert claims.claim(REQUEST) is ClaimResult.CLAIMED


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database(
    request: pytest.FixtureRequest,
    platform_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> str:
    """PostgreSQL (production, tests) and SQLite (the `make run` default)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/jobs.db"
        migrate.upgrade(url)
        monkeypatch.setenv("DATABASE_URL", url)
        reset_settings()
    return str(request.param)


def by_worker(worker_id: str | None) -> ClaimRequest:
    return ClaimRequest(key="welcome:7", kind="welcome", user_id=7, recipient=None, worker_id=worker_id)


def heartbeat(client: redis.Redis, worker_id: str) -> None:
    """What a living Dramatiq worker's every Redis command does: its broker id scored with the time now."""
    client.zadd(HEARTBEATS_KEY, {worker_id: time.time() * 1000})


def test_the_protocol_holds_on_both_databases(any_database: str) -> None:
    assert claims.claim(REQUEST) is ClaimResult.CLAIMED
    with pytest.raises(ClaimHeld):
        claims.claim(REQUEST)
    expire()
    assert claims.claim(REQUEST) is ClaimResult.CLAIMED and row().attempts == 2
    claims.mark_sent(REQUEST.key, "sg-2")
    assert claims.claim(REQUEST) is ClaimResult.DONE and row().status == "sent"


def test_a_claim_of_a_dead_worker_is_taken_over_at_once(any_database: str) -> None:
    # Given a live lease held by a worker whose heartbeat is gone (never seen, or SIGKILLed a minute ago)
    assert claims.claim(by_worker("worker-dead")) is ClaimResult.CLAIMED
    # When another worker meets it
    assert claims.claim(by_worker("worker-b")) is ClaimResult.CLAIMED
    # Then it holds the claim now, without waiting for the lease
    taken = row("welcome:7")
    assert (taken.claimed_by, taken.attempts, taken.status) == ("worker-b", 2, "claimed")
    assert taken.lease_expires_at is not None and taken.lease_expires_at > utcnow()


def test_a_live_claim_is_waited_for_until_its_lease_ends_without_spending_an_attempt(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    # Given a claim held by a worker that heartbeats
    heartbeat(redis_client, "worker-live")
    lease = dt.timedelta(seconds=90)
    assert claims.claim(by_worker("worker-live"), lease=lease) is ClaimResult.CLAIMED
    # When another worker meets it
    with pytest.raises(ClaimHeld) as held:
        claims.claim(by_worker("worker-b"))
    # Then it waits for the end of the lease, as a rate limit: the retry policy spends no attempt on it
    assert isinstance(held.value, RateLimited)
    assert lease.total_seconds() - 5 < held.value.retry_after <= lease.total_seconds() + claims.LEASE_MARGIN_S
    decision = decide(held.value, retries=4, age_ms=0, policy=RetrySettings(max_retries=4))
    assert decision.retry and not decision.spends_attempt
    assert decision.delay_ms == int(held.value.retry_after * 1000)
    assert row("welcome:7").claimed_by == "worker-live"


def test_a_claim_taken_outside_a_worker_or_by_this_worker_is_not_taken_over(
    platform_env: dict[str, str],
) -> None:
    # A claim naming no worker (a direct service call) is freed only by its lease
    assert claims.claim(by_worker(None)) is ClaimResult.CLAIMED
    with pytest.raises(ClaimHeld):
        claims.claim(by_worker("worker-b"))
    expire("welcome:7")
    # A worker meeting its own claim (a duplicate message on another thread) waits for it too
    assert claims.claim(by_worker("worker-b")) is ClaimResult.CLAIMED
    with pytest.raises(ClaimHeld):
        claims.claim(by_worker("worker-b"))
    assert row("welcome:7").attempts == 2


def test_a_holder_whose_heartbeat_cannot_be_read_counts_as_alive(
    platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a claim held by a worker, and a Redis that does not answer (nothing listens on its port)
    assert claims.claim(by_worker("worker-a")) is ClaimResult.CLAIMED
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    # When another worker meets the claim, Then it waits for it: a holder not known to be dead is alive
    with caplog.at_level("WARNING", logger="app.email.claims"), pytest.raises(ClaimHeld):
        claims.claim(by_worker("worker-b"))
    assert row("welcome:7").claimed_by == "worker-a"
    assert [r.getMessage() for r in caplog.records] == ["could not check a claim holder's heartbeat"]


def test_a_retry_of_the_same_message_on_the_same_worker_takes_its_own_claim_over(
    platform_env: dict[str, str],
) -> None:
    # Given a claim whose commit outcome its attempt never learnt (the database was cut at COMMIT)
    first = ClaimRequest(
        key="welcome:8", kind="welcome", user_id=8, recipient=None, message_id="m-1", worker_id="w"
    )
    assert claims.claim(first) is ClaimResult.CLAIMED
    # When another message for the key runs on that worker, it waits (it may be sending right now)
    with pytest.raises(ClaimHeld):
        claims.claim(dataclasses.replace(first, message_id="m-2"))
    # but the retry of the same message takes the claim at once (a worker runs a message on one thread)
    assert claims.claim(first) is ClaimResult.CLAIMED
    assert (row("welcome:8").attempts, row("welcome:8").message_id) == (2, "m-1")
