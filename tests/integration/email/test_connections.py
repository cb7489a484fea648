"""A worker process holds at most its pool's PostgreSQL connections, whatever its thread count.

Sends wait on SendGrid with no connection checked out, so 32 threads share the default pool of 5.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
import sqlalchemy
from sqlalchemy import select, text

from app import enqueue
from app.db.models import EmailLog
from app.db.session import dispose_engines, session_scope, transaction
from app.errors import DatabaseBusy, RetryableError
from app.middleware.retry_policy import RetrySettings, decide
from app.settings import Settings, reset_settings
from app.testing.sendgrid_server import Fault, SendGridSimulator
from tests.conftest import PG_BASE_URL
from tests.integration.email.factories import add_user
from tests.support.helpers import wait_for
from tests.support.worker import email_workers

pytestmark = pytest.mark.integration

THREADS = 32
EMAILS = 200
POOL_SIZE = Settings.model_fields["database_pool_size"].default


class BackendCounter:
    """Samples ``pg_stat_activity`` for one application name until stopped; keeps the highest count seen."""

    def __init__(self, application_name: str) -> None:
        self.application_name = application_name
        self.highest = 0
        self.samples = 0
        self._stop = threading.Event()
        self._engine = sqlalchemy.create_engine(PG_BASE_URL, poolclass=sqlalchemy.pool.NullPool)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._engine.dispose()

    def _run(self) -> None:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        with self._engine.connect() as connection:
            while not self._stop.wait(0.01):
                count = connection.execute(query, {"name": self.application_name}).scalar_one()
                self.highest = max(self.highest, count)
                self.samples += 1
                connection.rollback()


def test_32_threads_use_at_most_the_pool(
    email_env: dict[str, str], simulator: SendGridSimulator, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a 32-thread email worker on the default pool, its connections named, and sends that take 200 ms
    name = f"pool-test-{uuid.uuid4().hex[:8]}"
    env = {**email_env, "DATABASE_URL": f"{email_env['DATABASE_URL']}&application_name={name}"}
    env.pop("DATABASE_POOL_SIZE", None)
    users = [add_user() for _ in range(EMAILS)]
    simulator.script(Fault.slow(0.2), times=EMAILS)
    with email_workers(env, redis_client, tmp_path, threads=THREADS) as start_worker:
        worker = start_worker()
        # When 200 emails go through it
        with BackendCounter(name) as backends:
            enqueue.many([enqueue.job("send_welcome_email", user_id=user_id) for user_id in users])

            def all_sent() -> bool:
                with session_scope() as session:
                    return Counter(session.scalars(select(EmailLog.status))) == {"sent": EMAILS}

            try:
                wait_for(all_sent, timeout=120, what="200 emails marked sent")
            except AssertionError:
                raise AssertionError(worker.output()[-4000:]) from None
    # Then the sends overlapped far beyond the pool, and the process never had more backends than the pool
    assert simulator.max_in_flight > POOL_SIZE
    assert backends.samples > 10 and 0 < backends.highest <= POOL_SIZE, backends.highest
    assert simulator.accepted_total == EMAILS


def test_a_step_that_finds_every_connection_busy_fails_retryably_instead_of_hanging(
    platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pool of one connection, checked out by a step in progress
    monkeypatch.setenv("DATABASE_POOL_SIZE", "1")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT_S", "0.2")
    reset_settings()
    dispose_engines()
    with transaction() as busy:
        busy.execute(text("SELECT 1"))
        # When another step needs one, Then it fails with a retryable error after the pool timeout
        with pytest.raises(DatabaseBusy) as caught, session_scope() as session:
            session.execute(text("SELECT 1"))
        assert isinstance(caught.value, RetryableError)
        assert decide(caught.value, retries=0, age_ms=0, policy=RetrySettings()).retry
    # and the pool serves it again once the first step gave its connection back
    with transaction() as again:
        assert again.execute(text("SELECT 1")).scalar_one() == 1
