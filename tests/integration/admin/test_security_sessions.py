"""Finding 3 (sessions cannot be revoked) and finding 4 (never ``Secure``): the session lives in Redis, so
logout, a password change and ``jobs admin sessions revoke`` end it at once, also for a copy of the cookie;
the cookie is ``Secure`` (and HSTS sent) over HTTPS, believed from a trusted proxy only."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.integration.admin.conftest import ADMIN_PASSWORD, BASE_URL, VIEWER, log_in

pytestmark = pytest.mark.integration

COOKIE = "jobs_admin_session"


def new_client(base_url: str = BASE_URL) -> TestClient:
    from app.admin import create_app

    return TestClient(create_app(session_secret="test-secret"), base_url=base_url)  # as the conftest client


def copy_of(client: TestClient) -> TestClient:
    """Another browser holding the same session cookie (a stolen or kept copy)."""
    other = new_client()
    other.cookies.set(COOKIE, client.cookies[COOKIE])
    return other


def session_keys(client: redis.Redis[bytes]) -> list[bytes]:
    return client.keys("jobs:admin:session:*")


def test_logout_ends_the_session_for_every_copy_of_the_cookie(
    auth_client: TestClient, redis_client: redis.Redis[bytes]
) -> None:
    # Given an admin logged in, and a copy of their cookie elsewhere
    assert log_in(auth_client, "admin", ADMIN_PASSWORD).status_code == 303
    token = auth_client.get("/admin/api/csrf").json()["csrf_token"]
    with copy_of(auth_client) as copy:
        assert copy.get("/admin/api/queues").status_code == 200
        # The cookie holds a signed random id, the session is in Redis under a hash of that id
        assert len(session_keys(redis_client)) == 1
        assert auth_client.cookies[COOKIE].split(".")[0] not in session_keys(redis_client)[0].decode()

        # When they log out (the form carries the session's CSRF token; without it nothing happens)
        assert auth_client.post("/admin/logout", data={"csrf_token": "wrong"}).status_code == 403
        assert copy.get("/admin/api/queues").status_code == 200
        auth_client.post("/admin/logout", data={"csrf_token": token})

        # Then the copy reads and writes nothing any more
        assert copy.get("/admin/api/queues").status_code == 401
        write = copy.post(
            "/admin/api/dead-letters/discard", json={"ids": [1]}, headers={"X-CSRF-Token": token}
        )
        assert write.status_code == 401
    assert session_keys(redis_client) == []


def test_a_password_change_ends_the_sessions_opened_with_the_old_one(
    auth_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.settings import reset_settings

    # Given a viewer and an admin logged in
    log_in(auth_client, "viewer", VIEWER[1])
    with new_client() as admin:
        log_in(admin, "admin", ADMIN_PASSWORD)
        assert admin.get("/admin/api/queues").status_code == 200

        # When the admin password changes (and the admin processes restart with it)
        monkeypatch.setenv("ADMIN_PASSWORD", "a brand new password")
        reset_settings()

        # Then the admin's session has ended on every replica, the viewer's has not
        with new_client() as replica:
            replica.cookies.set(COOKIE, admin.cookies[COOKIE])
            assert replica.get("/admin/api/queues").status_code == 401
        assert admin.get("/admin/queues", follow_redirects=False).status_code == 303
        assert auth_client.get("/admin/api/queues").status_code == 200


def test_jobs_admin_sessions_revoke(auth_client: TestClient, redis_client: redis.Redis[bytes]) -> None:
    from app.cli import main

    log_in(auth_client, "viewer", VIEWER[1])
    with new_client() as admin:
        log_in(admin, "admin", ADMIN_PASSWORD)

        # Revoking one user's sessions leaves the others
        only_viewer = CliRunner().invoke(main, ["admin", "sessions", "revoke", "--user", "viewer"])
        assert only_viewer.exit_code == 0, only_viewer.output
        assert "revoked 1 admin session(s)" in only_viewer.output
        assert auth_client.get("/admin/api/queues").status_code == 401
        assert admin.get("/admin/api/queues").status_code == 200

        everyone = CliRunner().invoke(main, ["admin", "sessions", "revoke"])
        assert "revoked 1 admin session(s)" in everyone.output
        assert admin.get("/admin/api/queues").status_code == 401
    assert session_keys(redis_client) == []


def test_idle_and_absolute_timeouts(auth_client: TestClient, redis_client: redis.Redis[bytes]) -> None:
    from app.settings import get_settings

    settings = get_settings()
    log_in(auth_client, "admin", ADMIN_PASSWORD)
    (key,) = session_keys(redis_client)

    # The key expires after the idle timeout unless a request uses it again
    assert 0 < redis_client.ttl(key) <= settings.admin_session_idle_s
    redis_client.expire(key, 5)
    assert auth_client.get("/admin/api/queues").status_code == 200
    assert redis_client.ttl(key) > 5

    # However busy, a session opened longer ago than the maximum age has ended
    record = json.loads(redis_client.get(key) or b"{}")
    record["created"] -= settings.admin_session_max_age_s
    redis_client.set(key, json.dumps(record), ex=60)
    assert auth_client.get("/admin/api/queues").status_code == 401
    assert not redis_client.exists(key)


def test_a_forged_or_foreign_cookie_is_ignored(auth_client: TestClient) -> None:
    log_in(auth_client, "admin", ADMIN_PASSWORD)
    session_id = auth_client.cookies[COOKIE].split(".")[0]
    with copy_of(auth_client) as genuine:
        assert genuine.get("/admin/api/queues").status_code == 200
    for value in (session_id, f"{session_id}.{'0' * 32}", "x" * 5000):
        with new_client() as other:
            other.cookies.set(COOKIE, value)
            assert other.get("/admin/api/queues").status_code == 401


@pytest.fixture
def behind_proxy(with_auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The admin trusting one proxy network (TestClient's peer address is "testclient", never trusted)."""
    from app.settings import reset_settings

    monkeypatch.setenv("ADMIN_TRUSTED_PROXIES", "10.0.0.0/8")
    reset_settings()
    yield


def asgi_get(peer: str, password: str = VIEWER[1], **headers: str) -> tuple[int, dict[str, str]]:
    """GET /admin/api/csrf as the viewer through a raw ASGI call from ``peer`` (TestClient cannot set the peer
    address); returns the status and the response headers."""
    import asyncio
    import base64

    from app.admin import create_app

    app = create_app(session_secret="s" * 32)
    basic = b"Basic " + base64.b64encode(f"viewer:{password}".encode())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/admin/api/csrf", "raw_path": b"/admin/api/csrf", "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 8500), "client": (peer, 40000),
        "headers": [(b"host", b"127.0.0.1:8500"), (b"authorization", basic)]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"]), {k.decode(): v.decode() for k, v in sent[0]["headers"]}


def test_secure_cookie_and_hsts_behind_a_trusted_proxy_only(behind_proxy: None) -> None:
    # Through the trusted proxy that terminated TLS: Secure cookie, HSTS
    status, headers = asgi_get("10.1.2.3", **{"X-Forwarded-Proto": "https"})
    assert status == 200
    cookie = headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert headers["strict-transport-security"] == "max-age=31536000"

    # The same claim from anyone else is ignored: no Secure, no HSTS
    status, headers = asgi_get("192.0.2.7", **{"X-Forwarded-Proto": "https"})
    assert status == 200 and "Secure" not in headers["set-cookie"]
    assert "strict-transport-security" not in headers

    # Plain HTTP through the proxy: no Secure either
    assert "Secure" not in asgi_get("10.1.2.3", **{"X-Forwarded-Proto": "http"})[1]["set-cookie"]


def test_the_client_address_comes_from_a_trusted_proxy_only(
    behind_proxy: None, redis_client: redis.Redis[bytes]
) -> None:
    # A wrong password through the proxy counts against the client it names (not the proxy)
    assert asgi_get("10.1.2.3", "wrong", **{"X-Forwarded-For": "198.51.100.9, 10.2.2.2"})[0] == 401
    # A client claiming another address directly is counted under its own
    assert asgi_get("192.0.2.7", "wrong", **{"X-Forwarded-For": "203.0.113.1"})[0] == 401

    counted = sorted(k.decode() for k in redis_client.keys("jobs:admin:login:fails:ip:*"))
    assert counted == ["jobs:admin:login:fails:ip:192.0.2.7", "jobs:admin:login:fails:ip:198.51.100.9"]
