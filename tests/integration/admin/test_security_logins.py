"""Finding 2 (no brute-force protection): failed logins are counted in Redis per client and per user; from
the Nth on each locks exponentially longer, the right password included, with a clear message; each failure
is a logged security event and counted in ``admin_login_failures_total``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.integration.admin.conftest import ADMIN, ADMIN_PASSWORD, BASE_URL, VIEWER, log_in
from tests.support.helpers import wait_for

pytestmark = pytest.mark.integration

MAX_FAILURES = 3


@pytest.fixture
def throttled(with_auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The admin locking after 3 failures, for 1 s (then 2 s, 4 s ...)."""
    from app.admin import create_app
    from app.settings import reset_settings

    monkeypatch.setenv("ADMIN_LOGIN_MAX_FAILURES", str(MAX_FAILURES))
    monkeypatch.setenv("ADMIN_LOGIN_LOCKOUT_S", "1")
    reset_settings()
    with TestClient(create_app(session_secret="s" * 32), base_url=BASE_URL) as client:
        yield client


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("admin_login_failures_total", {"reason": reason}) or 0.0


def test_the_nth_wrong_password_locks_and_the_right_one_works_after_the_lock(
    throttled: TestClient, redis_client: redis.Redis[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    wrong_before, locked_before = failures("wrong_password"), failures("locked")
    caplog.set_level(logging.WARNING, logger="app.admin.auth")

    # Given three wrong passwords for admin from one client
    answers = [log_in(throttled, "admin", f"guess {n}").status_code for n in range(MAX_FAILURES)]

    # Then the first ones are plain refusals and the third locks
    assert answers == [401] * MAX_FAILURES
    locked = log_in(throttled, "admin", ADMIN_PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed logins. Try again in 1 seconds." in locked.text
    assert locked.headers["retry-after"] == "1"
    assert locked.headers["content-security-policy"].startswith("default-src 'self'")
    # And another admin replica (its own app, the same Redis) refuses too
    from app.admin import create_app

    with TestClient(create_app(session_secret="r" * 32), base_url=BASE_URL) as replica:
        assert log_in(replica, "admin", ADMIN_PASSWORD).status_code == 429
    # And HTTP Basic shares the lock (the right password too)
    basic = throttled.get("/admin/api/queues", auth=ADMIN)
    assert basic.status_code == 429 and basic.json()["detail"].startswith("too many failed logins")

    # And each failure was a security event and counted; the locked attempts too
    events = [r for r in caplog.records if getattr(r, "action", "") == "security.login_failed"]
    assert len(events) == MAX_FAILURES and {getattr(r, "user", None) for r in events} == {"admin"}
    assert failures("wrong_password") - wrong_before == MAX_FAILURES
    assert failures("locked") - locked_before == 3
    # And the count lives in Redis, where every admin replica sees it
    assert redis_client.get("jobs:admin:login:fails:user:admin") == str(MAX_FAILURES).encode()
    assert redis_client.exists("jobs:admin:login:lock:user:admin")

    # When the lock has expired, the right password works again
    response = wait_for(
        lambda: (r := log_in(throttled, "admin", ADMIN_PASSWORD)).status_code == 303 and r,
        timeout=10,
        what="the lock to expire",
    )
    assert response
    assert throttled.get("/admin/api/csrf").json()["user"] == "admin"


def test_each_further_failure_locks_twice_as_long(
    throttled: TestClient, redis_client: redis.Redis[bytes]
) -> None:
    from app.admin.throttle import MAX_LOCKOUT_S, Policy

    for n in range(MAX_FAILURES):
        log_in(throttled, "viewer", f"guess {n}")
    first = redis_client.pttl("jobs:admin:login:lock:user:viewer")
    redis_client.delete("jobs:admin:login:lock:user:viewer", "jobs:admin:login:lock:ip:testclient")

    assert log_in(throttled, "viewer", "again").status_code == 401
    second = redis_client.pttl("jobs:admin:login:lock:user:viewer")

    assert 0 < first <= 1000 < second <= 2000
    policy = Policy(max_failures=5, lockout_s=30)
    assert [policy.lock_for(n) for n in (4, 5, 6, 7)] == [0, 30, 60, 120]
    assert policy.lock_for(100) == MAX_LOCKOUT_S


def test_one_client_guessing_locks_that_client_for_every_user(
    throttled: TestClient, redis_client: redis.Redis[bytes]
) -> None:
    # Given failures spread over invented user names (not counted per user: they would fill Redis)
    for n in range(MAX_FAILURES):
        assert log_in(throttled, f"user{n}", "guess").status_code == 401

    # Then the client is locked, for the real users as well
    assert log_in(throttled, "viewer", VIEWER[1]).status_code == 429
    assert not redis_client.keys("jobs:admin:login:fails:user:*")
    assert throttled.get("/admin/api/queues", auth=ADMIN).status_code == 429


def test_a_login_form_without_its_token_is_refused(throttled: TestClient) -> None:
    # Login CSRF: a form posted from elsewhere carries no token matching the form's cookie
    response = throttled.post("/admin/login", data={"user": "admin", "password": ADMIN_PASSWORD})

    assert response.status_code == 403 and "The login form expired" in response.text
    assert throttled.get("/admin/api/queues").status_code == 401
