"""The service functions called directly (no broker), sending through the SendGrid backend to the simulator."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import EmailLog, User
from app.db.session import session_scope
from app.db.types import utcnow
from app.email import service
from app.email.content.common import UserRecord
from app.email.content.welcome import welcome_job
from app.email.delivery import EmailJob, Outcome, deliver_for_user
from app.errors import PermanentError, RetryableError
from app.testing.sendgrid_server import SendGridSimulator
from tests.integration.email.conftest import BASE_URL
from tests.integration.email.factories import add_opportunity, add_proposal, add_user, at, save

pytestmark = pytest.mark.integration


def log(key: str) -> EmailLog:
    with session_scope() as session:
        return session.execute(select(EmailLog).where(EmailLog.idempotency_key == key)).scalar_one()


def sent_count(kind: str, status: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "worker_emails_sent_total", {"queue": "email", "kind": kind, "status": status}
        )
        or 0.0
    )


def test_welcome_is_sent_once_with_links(email_env: dict[str, str], simulator: SendGridSimulator) -> None:
    user_id = add_user(email="ada@example.com", name="Ada")
    before = sent_count("welcome", "sent")
    assert service.send_welcome_email(user_id=user_id) is Outcome.SENT
    assert service.send_welcome_email(user_id=user_id) is Outcome.DUPLICATE
    [message] = simulator.messages
    assert message.recipients == ("ada@example.com",) and message.subject == "Welcome aboard, Ada"
    assert message.text and message.html and f"{BASE_URL}/dashboard" in message.text
    assert f'href="{BASE_URL}/account/notifications?unsubscribe=welcome"' in message.html
    assert message.headers["List-Unsubscribe"] == f"<{BASE_URL}/account/notifications?unsubscribe=welcome>"
    assert message.custom_args["idempotency_key"] == f"welcome:{user_id}"
    row = log(f"welcome:{user_id}")
    assert (row.status, row.provider_message_id) == ("sent", message.message_id)
    assert sent_count("welcome", "sent") == before + 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"email_opt_outs": ["welcome"]}, "opted_out"),
        ({"email": None}, "no_address"),
        ({"is_active": False}, "deactivated"),
    ],
)
def test_unreachable_users_are_skipped_with_the_reason(
    email_env: dict[str, str], simulator: SendGridSimulator, fields: dict[str, object], reason: str
) -> None:
    user_id = add_user(**fields)
    assert service.send_welcome_email(user_id=user_id) is Outcome.SKIPPED
    assert simulator.count() == 0
    row = log(f"welcome:{user_id}")
    assert (row.status, row.skip_reason) == ("skipped", reason)


def test_a_missing_user_is_permanent(email_env: dict[str, str]) -> None:
    with pytest.raises(PermanentError, match="does not exist"):
        service.send_welcome_email(user_id=999_999)


def test_reminder_lists_the_window_and_new_matches_then_skips_an_empty_day(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    # Given a user in New York with saved notices due inside and outside the 7-day window, and new notices
    today = utcnow().astimezone(ZoneInfo("America/New_York")).date()
    user_id = add_user(timezone="America/New_York", naics_codes=["541511"], keywords=["cloud"], set_asides=[])
    inside = add_opportunity(title="Due soon", response_deadline=at(today + dt.timedelta(days=3), 21))
    outside = add_opportunity(title="Due later", response_deadline=at(today + dt.timedelta(days=20), 21))
    save(user_id, inside)
    save(user_id, outside)
    add_opportunity(
        title="Matches by NAICS", naics_code="541511", response_deadline=at(today + dt.timedelta(30))
    )
    add_opportunity(title="Hybrid CLOUD migration", naics_code="999999")
    add_opportunity(title="Not for this user", naics_code="111111")
    # When the reminder of today is sent
    assert service.send_opportunity_reminder(user_id=user_id, on=today) is Outcome.SENT
    [message] = simulator.messages
    # Then it names the deadline inside the window and both matches, and nothing else
    assert message.text is not None and message.html is not None
    assert "Due soon" in message.text and "Due later" not in message.text
    assert "Matches by NAICS" in message.text and "Hybrid CLOUD migration" in message.text
    assert "Not for this user" not in message.text
    assert f'href="{BASE_URL}/opportunities/{inside}"' in message.html
    assert message.subject == "1 deadline coming up, 2 new matches"
    assert message.custom_args["idempotency_key"] == f"reminder:{user_id}:{today.isoformat()}"
    with session_scope() as session:
        assert session.get_one(User, user_id).last_reminder_at is not None
    # And the next day, with nothing new and nothing due, no email goes out
    later = today + dt.timedelta(days=25)
    assert service.send_opportunity_reminder(user_id=user_id, on=later) is Outcome.SKIPPED
    assert log(f"reminder:{user_id}:{later.isoformat()}").skip_reason == "nothing_to_report"
    assert len(simulator.messages) == 1


def test_proposal_notification_goes_to_each_recipient_with_its_own_key(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    owner = add_user(name="Owner")
    helper = add_user(name="Helper")
    quiet = add_user(name="Quiet", email_opt_outs=["proposal"])
    notice = add_opportunity(title="Base notice")
    proposal_id = add_proposal(owner, collaborators=(helper, quiet, owner), title="Our bid", notice_id=notice)
    outcomes = service.send_proposal_notification(proposal_id=proposal_id, event="submitted")
    assert outcomes == [Outcome.SENT, Outcome.SENT, Outcome.SKIPPED]
    keys = sorted(m.custom_args["idempotency_key"] for m in simulator.messages)
    assert keys == sorted(f"proposal:{proposal_id}:submitted:{uid}" for uid in (owner, helper))
    assert all(m.subject == "Proposal submitted: Our bid" for m in simulator.messages)
    assert all(f"{BASE_URL}/proposals/{proposal_id}" in (m.text or "") for m in simulator.messages)
    assert log(f"proposal:{proposal_id}:submitted:{quiet}").skip_reason == "opted_out"
    # A status change is its own email per status: the same status again sends nothing, a new one sends again
    for status in ("in_review", "in_review", "won"):
        service.send_proposal_notification(proposal_id=proposal_id, event="status_changed", status=status)
    changed = Counter(
        key.split(":")[3]
        for key in (m.custom_args["idempotency_key"] for m in simulator.messages)
        if ":status_changed:" in key
    )
    assert changed == {"in_review": 2, "won": 2}  # one per reachable recipient


def test_one_bad_recipient_does_not_block_the_others(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    owner = add_user()
    broken = add_user(email="broken-address")
    proposal_id = add_proposal(owner, collaborators=(broken,), title="Bid")
    with pytest.raises(PermanentError, match="SendGrid 400"):
        service.send_proposal_notification(proposal_id=proposal_id, event="created")
    [message] = simulator.messages
    assert message.custom_args["idempotency_key"] == f"proposal:{proposal_id}:created:{owner}"
    assert log(f"proposal:{proposal_id}:created:{broken}").status == "failed"


def test_weekly_summary_sections_and_attachment(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    # Given a week starting next Monday: last week holds today's new notices, the deadline falls in the week
    today = utcnow().date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    week = f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}"
    user_id = add_user(naics_codes=["541511"])
    add_opportunity(title="Fresh match", naics_code="541511", response_deadline=at(monday + dt.timedelta(30)))
    due = add_opportunity(title="Due this week", response_deadline=at(monday + dt.timedelta(days=2)))
    save(user_id, due)
    add_proposal(user_id, title="Draft bid", status="draft", due_date=monday + dt.timedelta(days=10))
    add_proposal(user_id, title="Won bid", status="won")
    report = Path(email_env["STORAGE_DIR"]) / "reports" / "weekly.pdf"
    report.parent.mkdir(parents=True)
    report.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    # When the summary is sent with the report attached
    outcome = service.send_weekly_summary(user_id=user_id, week=week, attachments=("reports/weekly.pdf",))
    # Then it has every section and the report, intact
    assert outcome is Outcome.SENT
    [message] = simulator.messages
    assert message.text is not None
    assert "Fresh match" in message.text and "Due this week" in message.text and "Draft bid" in message.text
    assert "1 draft, 1 won" in message.text
    assert message.subject == f"Your week {week}: 1 new match, 1 deadline"
    [attachment] = message.attachments
    assert (attachment.filename, attachment.type) == ("weekly.pdf", "application/pdf")
    assert attachment.content == report.read_bytes()


def test_a_missing_attachment_is_retried_and_leaves_the_key_claimable(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    user_id = add_user()
    with pytest.raises(RetryableError, match="does not exist"):
        service.send_weekly_summary(user_id=user_id, week="2026-W48", attachments=("reports/missing.pdf",))
    row = log(f"weekly:{user_id}:2026-W48")
    assert row.status == "claimed" and row.lease_expires_at is not None and row.lease_expires_at <= utcnow()
    assert simulator.count() == 0


def no_log(key: str) -> bool:
    with session_scope() as session:
        return session.scalar(select(EmailLog).where(EmailLog.idempotency_key == key)) is None


def test_content_that_fails_to_build_claims_nothing(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    """The content is built before the claim, in the same transaction: a build that fails holds no key."""
    user_id = add_user(email="late@example.com")
    key = f"welcome:{user_id}"

    def broken(session: Session, user: UserRecord) -> EmailJob:
        raise RetryableError("the opportunities table is locked")

    with pytest.raises(RetryableError):
        deliver_for_user(key, user_id, broken)
    assert no_log(key)
    # The retry sends, on its first claim
    assert service.send_welcome_email(user_id=user_id) is Outcome.SENT
    assert (log(key).status, log(key).attempts) == ("sent", 1)
    assert simulator.accepted_total == 1


def test_content_built_under_another_key_is_refused_before_any_claim(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    user_id = add_user(email="mixed@example.com")

    def wrong_key(session: Session, user: UserRecord) -> EmailJob:
        return dataclasses.replace(welcome_job(session, user), key="welcome:someone-else")

    with pytest.raises(PermanentError, match="someone-else"):
        deliver_for_user(f"welcome:{user_id}", user_id, wrong_key)
    assert no_log(f"welcome:{user_id}") and no_log("welcome:someone-else")
    assert simulator.accepted_total == 0
