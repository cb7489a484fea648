"""The claim protocol in email_log on PostgreSQL: insert wins once, live claims hold, lapsed ones are taken."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update

from app.db.models import EmailLog
from app.db.session import session_scope
from app.db.types import utcnow
from app.email import claims
from app.email.claims import ClaimHeld, ClaimRequest, ClaimResult

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
