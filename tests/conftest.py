"""Fixtures shared by every layer: a clean Redis database and a fresh PostgreSQL schema per test.

Parallel runs (helpers, CI shards) choose their own Redis database with ``JOBS_TEST_REDIS_DB`` and their own
schema prefix with ``JOBS_TEST_SCHEMA_PREFIX``. A missing Redis/PostgreSQL skips locally with a clear message
and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

REDIS_DB = int(os.environ.get("JOBS_TEST_REDIS_DB", "15"))
REDIS_URL = os.environ.get("JOBS_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
PG_BASE_URL = os.environ.get("JOBS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA_PREFIX = os.environ.get("JOBS_TEST_SCHEMA_PREFIX", "t")

# Before anything imports app.broker: the test process and the workers it starts share this Redis database.
os.environ["REDIS_URL"] = REDIS_URL
os.environ.pop("BROKER_URL", None)
os.environ.pop("SENTRY_DSN", None)
os.environ.setdefault("LOG_FORMAT", "json")


def _unavailable(what: str, err: Exception) -> None:
    message = f"{what} is not reachable ({err}); start it with .ci/services or run .ci/run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def dramatiq_broker_restored() -> Iterator[None]:
    """Dramatiq's global broker put back after the test: for every test that calls ``dramatiq.set_broker``."""
    from tests.support.helpers import global_broker_restored

    with global_broker_restored():
        yield


@pytest.fixture(autouse=True)
def _no_stub_broker_left_global() -> Iterator[None]:
    """Fails a test that leaves a StubBroker as the global broker (later tests would publish into it)."""
    yield
    import dramatiq.broker
    from dramatiq.brokers.stub import StubBroker

    if isinstance(dramatiq.broker.global_broker, StubBroker):
        dramatiq.broker.global_broker = None
        pytest.fail("the test left a StubBroker as Dramatiq's global broker: use dramatiq_broker_restored")


@pytest.fixture
def redis_client() -> Iterator[object]:
    """A clean Redis database for this test (FLUSHDB before and after)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        try:
            client.flushdb()
        except redis.ConnectionError as err:
            _unavailable("Redis", err)
        yield client
        client.flushdb()
    finally:
        client.close()  # also when the test is skipped or the final FLUSHDB fails


def schema_url(schema: str) -> str:
    return f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, migrated to head; dropped afterwards."""
    import sqlalchemy
    from sqlalchemy.exc import OperationalError

    from app.db import migrate

    schema = f"{SCHEMA_PREFIX}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_BASE_URL, poolclass=sqlalchemy.pool.NullPool)
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as err:
        _unavailable("PostgreSQL", err)
    url = schema_url(schema)
    migrate.upgrade(url)
    yield url
    from app.db.session import dispose_engines

    dispose_engines()
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def platform_env(
    monkeypatch: pytest.MonkeyPatch, redis_client: object, pg_url: str, tmp_path: object
) -> Iterator[dict[str, str]]:
    """The environment of a platform process for this test: its Redis database and PostgreSQL schema.

    Returns the variables to hand to subprocesses (workers, CLI) as well.
    """
    from app.db.session import dispose_engines
    from app.settings import reset_settings
    from tests.support.helpers import use_env

    env = {
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": pg_url,
        "STORAGE_DIR": f"{tmp_path}/storage",
        "EMAIL_OUTBOX_DIR": f"{tmp_path}/outbox",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    use_env(monkeypatch, env)
    dispose_engines()
    yield env
    reset_settings()
    dispose_engines()
