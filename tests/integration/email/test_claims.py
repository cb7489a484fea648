"""The claim protocol in email_log on PostgreSQL: insert wins once, live claims hold, lapsed ones are taken."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.db import migrate
from app.db.models import EmailLog
from app.db.session import autocommit_scope, session_scope
from app.db.types import utcnow
from app.email import claims
from app.email.claims import ClaimHeld, ClaimRequest, ClaimResult
from app.email.content.common import USER_BY_ID
from app.settings import reset_settings
from tests.integration.email.factories import add_user

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
    """PostgreSQL (one statement with a data-modifying CTE) and SQLite (two statements, the `make run` default)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/jobs.db"
        migrate.upgrade(url)
        monkeypatch.setenv("DATABASE_URL", url)
        reset_settings()
    return str(request.param)


def user_request(user_id: int) -> ClaimRequest:
    return ClaimRequest(
        key=f"welcome:{user_id}", kind="welcome", user_id=user_id, recipient=None, message_id="m-1"
    )


def test_claim_with_user_claims_once_and_reads_the_user(any_database: str) -> None:
    user_id = add_user(email="claimed@example.com", name="Claimed")
    with autocommit_scope() as session:
        user, claimed = claims.claim_with_user(user_request(user_id), load=USER_BY_ID, session=session)
    assert claimed is True
    assert user is not None and (user["id"], user["email"], user["name"]) == (
        user_id,
        "claimed@example.com",
        "Claimed",
    )
    stored = row(f"welcome:{user_id}")
    assert (stored.status, stored.recipient, stored.user_id, stored.message_id, stored.attempts) == (
        "claimed", "claimed@example.com", user_id, "m-1", 1,
    )  # fmt: skip
    assert stored.lease_expires_at is not None and stored.lease_expires_at > utcnow()

    # A second claim finds the row, leaves it alone and still reads the user
    with autocommit_scope() as session:
        again, claimed_again = claims.claim_with_user(user_request(user_id), load=USER_BY_ID, session=session)
    assert claimed_again is False and again is not None and again["id"] == user_id
    assert row(f"welcome:{user_id}").attempts == 1


def test_claim_with_user_claims_nothing_for_a_missing_user(any_database: str) -> None:
    with autocommit_scope() as session:
        assert claims.claim_with_user(user_request(987654), load=USER_BY_ID, session=session) == (None, False)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(EmailLog)) == 0


def test_a_fresh_claim_settled_as_skipped_is_done(any_database: str) -> None:
    user_id = add_user(email="skip@example.com")
    with autocommit_scope() as session:
        claims.claim_with_user(user_request(user_id), load=USER_BY_ID, session=session)
        claims.settle_as_skipped(f"welcome:{user_id}", "opted_out", session=session)
    stored = row(f"welcome:{user_id}")
    assert (stored.status, stored.skip_reason, stored.lease_expires_at) == ("skipped", "opted_out", None)
    assert claims.claim(user_request(user_id)) is ClaimResult.DONE


def test_the_claim_reads_a_user_as_the_main_pool_does(platform_env: dict[str, str]) -> None:
    """The claim runs on psycopg2's cursor (app/db/session.py autocommit_url, app/db/direct.py): the user must
    come back as SQLAlchemy on psycopg 3 gives it, JSON lists, aware timestamps and all."""
    last_reminder = dt.datetime(2026, 3, 8, 14, 30, tzinfo=dt.UTC)
    user_id = add_user(
        email="drivers@example.com",
        name="Zoë <b>Drivers</b>",
        timezone="America/New_York",
        naics_codes=["541511", "541512"],
        keywords=["cloud", "zero trust"],
        set_asides=["SBA"],
        email_opt_outs=["weekly_summary"],
        last_reminder_at=last_reminder,
    )
    with autocommit_scope() as session:
        assert session.connection().dialect.driver == "psycopg2"
        claimed_user, claimed = claims.claim_with_user(
            user_request(user_id), load=USER_BY_ID, session=session
        )
    with session_scope() as session:
        connection = session.connection()
        assert connection.dialect.driver == "psycopg"
        main = dict(connection.execute(USER_BY_ID, {"user_id": user_id}).one()._mapping)
    assert claimed is True and claimed_user == main
    assert main["naics_codes"] == ["541511", "541512"] and main["email_opt_outs"] == ["weekly_summary"]
    assert claimed_user["last_reminder_at"] == last_reminder
    assert claimed_user["last_reminder_at"].utcoffset() == dt.timedelta(0)
