"""The one window exactly-once cannot close, measured: the sender dies after SendGrid accepted, before the mark.

docs/email.md explains it. These tests count the duplicates it produces (one per crash in the window, each
traceable at SendGrid by its custom_args idempotency key) and check that every other point is duplicate-free.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from sqlalchemy import update

from app.db.models import EmailLog
from app.db.session import session_scope
from app.db.types import utcnow
from app.email import service
from app.email.delivery import Outcome
from app.errors import RetryableError
from app.testing.sendgrid_server import Fault, SendGridSimulator
from tests.integration.email.factories import add_user
from tests.support.helpers import ROOT, wait_for

pytestmark = pytest.mark.integration

CRASHES = 3


def lease_runs_out(key: str) -> None:
    """What three minutes of waiting would do, without the wait."""
    with session_scope() as session:
        session.execute(
            update(EmailLog)
            .where(EmailLog.idempotency_key == key)
            .values(lease_expires_at=utcnow() - dt.timedelta(seconds=1))
        )


def duplicates(simulator: SendGridSimulator) -> int:
    counts = Counter(m.custom_args["idempotency_key"] for m in simulator.messages)
    return sum(n - 1 for n in counts.values())


def test_a_crash_between_accept_and_mark_sends_again_after_the_lease(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    for crash in range(CRASHES):
        # Given a sender whose request SendGrid accepts but whose response never comes back
        user_id = add_user()
        simulator.script(Fault.accept_then_drop(delay_s=60))
        sender = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from app.email import service; service.send_welcome_email(user_id={user_id})",
            ],
            env={**os.environ, **email_env, "SENDGRID_TIMEOUT_S": "120"},
            cwd=ROOT,
        )
        # When it dies while waiting (accepted, not marked)
        wait_for(lambda c=crash: simulator.accepted_total >= 2 * c + 1, what="SendGrid to accept")
        os.kill(sender.pid, signal.SIGKILL)
        sender.wait(10)
        # Then a retry before the lease runs out backs off, and one after it sends again
        with pytest.raises(RetryableError, match="being sent by another worker"):
            service.send_welcome_email(user_id=user_id)
        lease_runs_out(f"welcome:{user_id}")
        simulator.clear_faults()
        assert service.send_welcome_email(user_id=user_id) is Outcome.SENT
    assert duplicates(simulator) == CRASHES
    assert all(m.custom_args["idempotency_key"].startswith("welcome:") for m in simulator.messages)


def test_a_response_lost_on_the_network_is_a_duplicate_too(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    user_id = add_user()
    simulator.script(Fault.accept_then_drop())
    with pytest.raises(RetryableError, match="unreachable"):
        service.send_welcome_email(user_id=user_id)
    assert service.send_welcome_email(user_id=user_id) is Outcome.SENT
    assert duplicates(simulator) == 1


def test_outside_the_window_nothing_is_sent_twice(
    email_env: dict[str, str], simulator: SendGridSimulator
) -> None:
    # Failures before acceptance (5xx, reset) and redeliveries after the mark send exactly one email each
    users = [add_user() for _ in range(4)]
    simulator.script(Fault.error(503))
    simulator.script(Fault.reset())
    for user_id in users:
        for _ in range(3):
            try:
                service.send_welcome_email(user_id=user_id)
            except RetryableError:
                continue
    assert len(simulator.messages) == len(users) and duplicates(simulator) == 0
