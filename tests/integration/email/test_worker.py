"""End to end: enqueue helpers → Redis → a real `dramatiq ... actors.email` worker → SendGrid backend → simulator."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select

from app import enqueue
from app.db.models import DeadLetter, EmailLog
from app.db.session import session_scope
from app.db.types import utcnow
from app.testing.sendgrid_server import AcceptedMessage, Fault, SendGridSimulator
from app.transport.workers import HEARTBEATS_KEY
from tests.integration.email.conftest import BASE_URL
from tests.integration.email.factories import add_opportunity, add_proposal, add_user, at, save
from tests.integration.email.queue import delayed
from tests.support.helpers import wait_for
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

StartWorker = Callable[[], WorkerProcess]


def arrived(simulator: SendGridSimulator, count: int, worker: WorkerProcess, timeout: float = 20.0) -> None:
    try:
        wait_for(
            lambda: len(simulator.messages) >= count, timeout=timeout, what=f"{count} emails at the simulator"
        )
    except AssertionError:
        raise AssertionError(worker.output()[-4000:]) from None


def statuses(key: str) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(EmailLog.status).where(EmailLog.idempotency_key == key)))


def pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_each_kind_renders_and_arrives(
    start_worker: StartWorker, simulator: SendGridSimulator, email_env: dict[str, str]
) -> None:
    # Given users, a saved notice due in three days, a proposal with a collaborator
    today = dt.datetime.now(dt.UTC).date()
    ada = add_user(name="Ada", email="ada@example.com")
    bob = add_user(name="Bob", email="bob@example.com")
    notice = add_opportunity(title="Data platform", response_deadline=at(today + dt.timedelta(days=3)))
    save(ada, notice)
    proposal = add_proposal(ada, collaborators=(bob,), title="Data bid", notice_id=notice)
    worker = start_worker()
    # When each kind is enqueued through the web app's helpers
    enqueue.welcome_email(user_id=ada)
    enqueue.opportunity_reminder(user_id=ada, on=today)
    enqueue.proposal_notification(proposal_id=proposal, event="created")
    enqueue.weekly_summary(user_id=bob, week="2026-W48")
    arrived(simulator, 5, worker)
    by_key = {m.custom_args["idempotency_key"]: m for m in simulator.messages}
    # Then each arrives once, to the right person, with both parts and its links
    expected = {
        f"welcome:{ada}": ("ada@example.com", "Welcome aboard, Ada", f"{BASE_URL}/dashboard"),
        f"reminder:{ada}:{today.isoformat()}": (
            "ada@example.com",
            "1 deadline coming up",
            f"/opportunities/{notice}",
        ),
        f"proposal:{proposal}:created:{ada}": (
            "ada@example.com",
            "New proposal: Data bid",
            f"/proposals/{proposal}",
        ),
        f"proposal:{proposal}:created:{bob}": (
            "bob@example.com",
            "New proposal: Data bid",
            f"/proposals/{proposal}",
        ),
        f"weekly:{bob}:2026-W48": (
            "bob@example.com",
            "Your week 2026-W48: 0 new matches, 0 deadlines",
            "Data bid",  # Bob's pipeline lists the proposal he collaborates on
        ),
    }
    assert set(by_key) == set(expected)
    for key, (address, subject, fragment) in expected.items():
        message = by_key[key]
        assert message.recipients == (address,), key
        assert message.subject == subject, key
        assert message.text and message.html and "<style" not in message.html
        kind = key.split(":")[0]
        assert f"{BASE_URL}/account/notifications?unsubscribe={kind}" in message.text
        assert message.headers["List-Unsubscribe"] == f"<{BASE_URL}/account/notifications?unsubscribe={kind}>"
        assert fragment in message.text and fragment in message.html, key
        assert statuses(key) == ["sent"]


def test_duplicates_send_one_email_and_wait_on_the_live_claim_without_spending_attempts(
    start_worker: StartWorker, simulator: SendGridSimulator, redis_client: redis.Redis
) -> None:
    # Given the same welcome delivered five times at once (no Redis-side key, so only email_log can stop it),
    # its first send slow enough that the other copies meet a live claim, and a reminder enqueued twice
    user_id = add_user()
    notice = add_opportunity(response_deadline=at(dt.date(2026, 11, 24)))
    save(user_id, notice)
    simulator.script(Fault.slow(1.0), match=is_welcome)
    worker = start_worker()
    enqueue.many([enqueue.job("send_welcome_email", user_id=user_id) for _ in range(5)])
    enqueue.opportunity_reminder(user_id=user_id, on=dt.date(2026, 11, 23))
    enqueue.opportunity_reminder(user_id=user_id, on=dt.date(2026, 11, 23), idempotency_key="other-key")
    arrived(simulator, 2, worker)
    wait_for(lambda: statuses(f"welcome:{user_id}") == ["sent"], what="the welcome marked sent")
    # Then one email of each was sent
    keys = sorted(m.custom_args["idempotency_key"] for m in simulator.messages)
    assert keys == sorted([f"welcome:{user_id}", f"reminder:{user_id}:2026-11-23"])
    # and the copies that met the live claim wait for the end of its lease, with no attempt spent
    waiting = [m for m in delayed(redis_client) if m["actor_name"] == "send_welcome_email"]
    assert waiting, worker.output()[-4000:]
    for message in waiting:
        assert message["options"].get("retries", 0) == 0 and message["options"]["deferrals"] == 1
        assert message["options"]["last_retry_reason"] == "rate_limited"
        assert message["options"]["eta"] / 1000 > time.time() + 120  # the 3-minute lease, not a 5 s backoff


def is_welcome(body: dict[str, Any]) -> bool:
    key = AcceptedMessage.decode("", body).custom_args.get("idempotency_key", "")
    return str(key).startswith("welcome:")


def add_claim(key: str, user_id: int, *, worker_id: str, lease: dt.timedelta) -> None:
    """A claim as another worker's send in progress leaves it."""
    with session_scope() as session:
        session.add(
            EmailLog(
                idempotency_key=key,
                kind="welcome",
                user_id=user_id,
                status="claimed",
                claimed_by=worker_id,
                lease_expires_at=utcnow() + lease,
            )
        )


def test_a_claim_left_by_a_dead_worker_is_taken_over_at_once(
    start_worker: StartWorker, simulator: SendGridSimulator, redis_client: redis.Redis
) -> None:
    # Given a welcome claimed for three more minutes by a worker whose heartbeat is gone (SIGKILLed)
    user_id = add_user()
    add_claim(f"welcome:{user_id}", user_id, worker_id="killed-worker", lease=dt.timedelta(minutes=3))
    worker = start_worker()
    # When its message is redelivered
    enqueue.welcome_email(user_id=user_id)
    # Then it is sent now, once, by the living worker, which holds the claim
    arrived(simulator, 1, worker)
    wait_for(lambda: statuses(f"welcome:{user_id}") == ["sent"], what="the welcome marked sent")
    with session_scope() as session:
        row = session.scalars(select(EmailLog).where(EmailLog.idempotency_key == f"welcome:{user_id}")).one()
    assert row.claimed_by not in (None, "killed-worker") and row.attempts == 2
    assert len(simulator.messages) == 1


def test_a_live_claim_is_retried_when_its_lease_ends(
    start_worker: StartWorker, simulator: SendGridSimulator, redis_client: redis.Redis
) -> None:
    # Given a welcome claimed for 3 s by a worker that heartbeats (and then never marks: it hangs)
    user_id = add_user()
    redis_client.zadd(HEARTBEATS_KEY, {"busy-worker": time.time() * 1000})
    add_claim(f"welcome:{user_id}", user_id, worker_id="busy-worker", lease=dt.timedelta(seconds=3))
    worker = start_worker()
    enqueue.welcome_email(user_id=user_id)
    # Then the message waits for the lease (not the 5 s backoff, no attempt spent) and then sends
    arrived(simulator, 1, worker, timeout=30)
    wait_for(lambda: statuses(f"welcome:{user_id}") == ["sent"], what="the welcome marked sent")
    retries = [r for r in worker.log_records() if r.get("event", r.get("message")) == "retry scheduled"]
    assert [(r.get("reason"), r.get("attempts")) for r in retries] == [("rate_limited", 1)], retries
    assert 0 < retries[0]["delay_ms"] <= 4_000 + 1_000


def test_rate_limit_waits_until_the_reset_time(
    start_worker: StartWorker, simulator: SendGridSimulator
) -> None:
    simulator.script(Fault.rate_limited(reset_in_s=2))
    worker = start_worker()
    enqueue.welcome_email(user_id=add_user())
    arrived(simulator, 1, worker)
    limited, accepted = simulator.requests
    assert (limited.status, accepted.status) == (429, 202)
    assert accepted.at >= int(limited.headers["X-RateLimit-Reset"])


def test_503_is_retried_then_succeeds(start_worker: StartWorker, simulator: SendGridSimulator) -> None:
    simulator.script(Fault.error(503))
    worker = start_worker()
    user_id = add_user()
    enqueue.welcome_email(user_id=user_id)
    arrived(simulator, 1, worker, timeout=30)
    failed, accepted = simulator.requests
    assert (failed.status, accepted.status) == (503, 202)
    assert accepted.at - failed.at >= 4.5  # the queue's first backoff (5 s, jittered)
    wait_for(lambda: statuses(f"welcome:{user_id}") == ["sent"], what="the email marked sent")


def test_400_is_dead_lettered_with_sendgrid_text(
    start_worker: StartWorker, simulator: SendGridSimulator
) -> None:
    user_id = add_user(email="no-at-sign")
    worker = start_worker()
    enqueue.welcome_email(user_id=user_id)

    def dead_letter() -> DeadLetter | None:
        with session_scope() as session:
            return session.scalars(select(DeadLetter).where(DeadLetter.actor == "send_welcome_email")).first()

    try:
        row = wait_for(dead_letter, what="the dead letter")
    except AssertionError:
        raise AssertionError(worker.output()[-4000:]) from None
    assert isinstance(row, DeadLetter)
    assert row.exception_type.endswith("PermanentError")
    assert "SendGrid 400: Does not contain a valid address. (field: personalizations.0.to.0.email)" in (
        row.exception_message
    )
    assert row.attempts == 1 and simulator.count(400) == 1 and simulator.messages == []
    assert statuses(f"welcome:{user_id}") == ["failed"]


def test_attachment_arrives_base64_encoded_and_opens(
    start_worker: StartWorker, simulator: SendGridSimulator, email_env: dict[str, str]
) -> None:
    report = Path(email_env["STORAGE_DIR"]) / "reports" / "2026-W48.pdf"
    report.parent.mkdir(parents=True)
    report.write_bytes(pdf_bytes())
    worker = start_worker()
    enqueue.weekly_summary(user_id=add_user(), week="2026-W48", attachments=["reports/2026-W48.pdf"])
    arrived(simulator, 1, worker)
    [message] = simulator.messages
    [raw] = message.body["attachments"]
    assert (raw["filename"], raw["type"], raw["disposition"]) == (
        "2026-W48.pdf",
        "application/pdf",
        "attachment",
    )
    assert message.attachments[0].content == report.read_bytes()
    assert len(PdfReader(io.BytesIO(message.attachments[0].content)).pages) == 1


def test_html_in_a_name_arrives_escaped(start_worker: StartWorker, simulator: SendGridSimulator) -> None:
    worker = start_worker()
    enqueue.welcome_email(user_id=add_user(name='<img src=x onerror="alert(1)">Eve'))
    arrived(simulator, 1, worker)
    [message] = simulator.messages
    assert message.html is not None and message.text is not None
    assert "<img" not in message.html
    assert "&lt;img src=x onerror=" in message.html
    assert '<img src=x onerror="alert(1)">Eve' in message.text  # plain text stays literal


def test_dispatcher_sends_one_reminder_per_user_at_nine_local_across_dst(
    start_worker: StartWorker, simulator: SendGridSimulator, redis_client: redis.Redis
) -> None:
    # Given users in four zones, each with a saved notice due soon after both DST change days
    zones = ("America/New_York", "Europe/London", "Asia/Kolkata", "UTC")
    users = {add_user(timezone=zone): zone for zone in zones}
    for user_id in users:
        for due in (dt.date(2026, 3, 31), dt.date(2026, 11, 3)):
            save(user_id, add_opportunity(response_deadline=at(due)))
    worker = start_worker()
    # When the scheduler's hourly dispatch runs over both change days, and one hour is dispatched twice
    ticks = [
        dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=h)
        for day in (dt.date(2026, 3, 29), dt.date(2026, 11, 1))
        for h in range(24)
    ]
    for tick in [*ticks, ticks[14 + 24]]:
        enqueue.daily_reminders(at=tick)
    arrived(simulator, 2 * len(users), worker, timeout=30)
    expected = sorted(f"reminder:{u}:{day}" for u in users for day in ("2026-03-29", "2026-11-01"))
    # (a copy from the hour dispatched twice that met its twin's claim waits for the lease: not awaited here)
    wait_for(lambda: all(statuses(key) == ["sent"] for key in expected), what="every reminder marked sent")
    # Then each user got exactly one reminder per change day, dated in their own zone
    keys = sorted(m.custom_args["idempotency_key"] for m in simulator.messages)
    assert keys == expected
