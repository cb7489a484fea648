"""PostgreSQL lost while emails are in flight (a TCP proxy in front of it, cut and restored): nothing is sent twice.

The sends were accepted by SendGrid while the database was away, so only their marks are at stake: they are
retried in process, and a mark that cannot be written is carried by the message so that its retry only marks
(docs/email.md, "A database outage").
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.middleware import CurrentMessage
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app import enqueue
from app.db.models import DeadLetter, EmailLog
from app.db.session import dispose_engines, session_scope
from app.email import delivery, service
from app.email.delivery import SENT_OPTION, MarkPending, Outcome
from app.errors import RateLimited
from app.settings import reset_settings
from app.testing.sendgrid_server import Fault, SendGridSimulator
from tests.integration.email.factories import add_user
from tests.integration.email.queue import drained
from tests.support.helpers import wait_for
from tests.support.tcp_proxy import TcpProxy
from tests.support.worker import WorkerProcess, email_workers

pytestmark = pytest.mark.integration

EMAILS = 16


def through(proxy: TcpProxy, url: str) -> str:
    """``url`` with the proxy as its server."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def proxy_for(url: str) -> TcpProxy:
    parsed = make_url(url)
    return TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)


def statuses() -> Counter[str]:
    with session_scope() as session:
        return Counter(session.scalars(select(EmailLog.status)))


def test_a_database_outage_while_sends_are_in_flight_sends_each_email_once(
    email_env: dict[str, str], simulator: SendGridSimulator, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a worker whose PostgreSQL is behind a proxy, and sends that stay in flight for 2 s each
    users = [add_user() for _ in range(EMAILS)]
    simulator.script(Fault.slow(2.0), times=EMAILS)
    with proxy_for(email_env["DATABASE_URL"]) as proxy:
        env = {**email_env, "DATABASE_URL": through(proxy, email_env["DATABASE_URL"])}
        with email_workers(env, redis_client, tmp_path, threads=8) as start_worker:
            worker = start_worker()
            for user_id in users:
                enqueue.welcome_email(user_id=user_id)
            # When PostgreSQL goes away while sends are at SendGrid (claimed, not yet answered)
            wait_for(lambda: len(simulator.requests) >= 4, what="sends in flight")
            proxy.cut()
            in_flight = len(simulator.requests)
            # and stays away until SendGrid accepted them and their marks failed
            wait_for(lambda: simulator.accepted_total >= in_flight, timeout=30, what="the sends accepted")
            wait_for(lambda: mark_failures(worker) >= 1, timeout=30, what="a mark to fail")
            proxy.restore()
            # Then every email ends sent, and nothing is left on the queue
            try:
                wait_for(lambda: statuses() == {"sent": EMAILS}, timeout=120, what="every email marked sent")
                wait_for(lambda: drained(redis_client), timeout=60, what="the email queue to drain")
            except AssertionError:
                raise AssertionError(worker.output()[-6000:]) from None
    # exactly once each at SendGrid, nothing dead-lettered
    sent = Counter(m.custom_args["idempotency_key"] for m in simulator.messages)
    assert sent == Counter({f"welcome:{user_id}": 1 for user_id in users})
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 0


def mark_failures(worker: WorkerProcess) -> int:
    return sum(1 for r in worker.log_records() if r.get("event") == "email sent, mark failed; retrying")


def test_a_mark_that_cannot_be_written_travels_with_the_message_and_its_retry_only_marks(
    email_env: dict[str, str], simulator: SendGridSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = add_user()
    key = f"welcome:{user_id}"
    message = dramatiq.Message(
        queue_name="email", actor_name="send_welcome_email", args=(), kwargs={}, options={}
    )
    outcomes: list[object] = []

    def attempt() -> None:
        """One delivery of ``message``, as a worker thread runs it (CurrentMessage set for its context)."""
        CurrentMessage().before_process_message(None, message)
        try:
            outcomes.append(service.send_welcome_email(user_id=user_id))
        except Exception as err:  # recorded for the assertions below
            outcomes.append(err)

    def run_attempt() -> None:
        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join(60)

    with proxy_for(email_env["DATABASE_URL"]) as proxy:
        monkeypatch.setenv("DATABASE_URL", through(proxy, email_env["DATABASE_URL"]))
        reset_settings()
        dispose_engines()
        monkeypatch.setattr(delivery, "MARK_RETRY_FOR_S", 1.0)
        # Given a send in flight when PostgreSQL goes away for longer than the mark is retried in process
        simulator.script(Fault.slow(1.0))
        thread = threading.Thread(target=attempt)
        thread.start()
        wait_for(lambda: len(simulator.requests) >= 1, what="the send in flight")
        proxy.cut()
        thread.join(60)
        # Then the attempt ends as a wait that spends no retry, and the message knows the email left
        assert len(outcomes) == 1 and isinstance(outcomes[0], MarkPending), outcomes
        assert isinstance(outcomes[0], RateLimited)
        provider_id = simulator.messages[0].message_id
        assert message.options[SENT_OPTION] == {key: provider_id}
        # When the database is back and the message is retried
        proxy.restore()
        run_attempt()
        # Then it marked without sending again
        assert outcomes[1] is Outcome.SENT
        assert simulator.accepted_total == 1
        with session_scope() as session:
            row = session.scalars(select(EmailLog).where(EmailLog.idempotency_key == key)).one()
        assert (row.status, row.provider_message_id, row.attempts) == ("sent", provider_id, 1)
        dispose_engines()


def test_a_worker_whose_database_stays_away_past_the_mark_retries_marks_on_the_message_retry(
    email_env: dict[str, str], simulator: SendGridSimulator, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a worker whose PostgreSQL is behind a proxy, and a send held 1 s at SendGrid
    user_id = add_user()
    simulator.script(Fault.slow(1.0))
    with proxy_for(email_env["DATABASE_URL"]) as proxy:
        env = {**email_env, "DATABASE_URL": through(proxy, email_env["DATABASE_URL"])}
        with email_workers(env, redis_client, tmp_path, threads=2) as start_worker:
            worker = start_worker()
            enqueue.welcome_email(user_id=user_id)
            # When PostgreSQL goes away during the send and stays away past the in-process mark retries
            wait_for(lambda: len(simulator.requests) >= 1, what="the send in flight")
            proxy.cut()
            wait_for(
                lambda: logged(worker, "email sent but not marked"),
                timeout=delivery.MARK_RETRY_FOR_S + 30,
                what="the in-process mark retries to give up",
            )
            proxy.restore()
            # Then the message's retry marks it, without sending again and without spending an attempt
            try:
                wait_for(
                    lambda: logged(worker, "email marked sent after an earlier attempt sent it"),
                    timeout=60,
                    what="the retry to mark the email",
                )
                wait_for(lambda: drained(redis_client), timeout=30, what="the email queue to drain")
            except AssertionError:
                raise AssertionError(worker.output()[-6000:]) from None
            assert statuses() == {"sent": 1}
            retries = [r for r in worker.log_records() if r.get("event") == "retry scheduled"]
            assert [r.get("reason") for r in retries] == ["rate_limited"], retries
    assert simulator.accepted_total == 1
    with session_scope() as session:
        row = session.scalars(select(EmailLog)).one()
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 0
    assert (row.provider_message_id, row.attempts) == (simulator.messages[0].message_id, 1)


def logged(worker: WorkerProcess, event: str) -> bool:
    return any(r.get("event") == event for r in worker.log_records())
