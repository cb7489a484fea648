"""Finding 1 (DNS rebinding) and the Origin check of writes: a foreign ``Host`` or ``Origin`` is refused, with
and without passwords; probes answer whatever the Host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.errors import SettingsError
from tests.integration.admin.conftest import ADMIN, BASE_URL, add_dead_letter, csrf

pytestmark = pytest.mark.integration

REBOUND = "attacker.example:8500"


def test_rebinding_without_passwords_is_refused(client: TestClient) -> None:
    # Given the password-less admin and a page of attacker.example re-pointed at 127.0.0.1
    dead_letter_id = add_dead_letter()

    # When the page asks for a CSRF token and then discards, with its own name as Host and Origin
    token = client.get("/admin/api/csrf", headers={"Host": REBOUND})
    write = client.post(
        "/admin/api/dead-letters/discard",
        json={"ids": [dead_letter_id]},
        headers={"Host": REBOUND, "Origin": f"http://{REBOUND}", "X-CSRF-Token": "guess"},
    )
    page = client.get("/admin/dead-letters", headers={"Host": REBOUND})

    # Then every request is refused before any route runs, with the security headers
    for response in (token, write, page):
        assert response.status_code == 400
        assert response.json() == {"detail": "host not allowed (ADMIN_ALLOWED_HOSTS)"}
        assert response.headers["x-frame-options"] == "DENY"
        assert "csrf" not in response.text
    # And the loopback names still work
    for host in ("127.0.0.1:8500", "localhost:8500", "[::1]:8500"):
        assert client.get("/admin/api/queues", headers={"Host": host}).status_code == 200
    assert client.get(f"/admin/api/dead-letters/{dead_letter_id}").json()["status"] == "dead"


def test_without_passwords_allowed_hosts_cannot_widen(
    no_auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.admin import create_app
    from app.admin.server import bind_address
    from app.settings import reset_settings

    monkeypatch.setenv("ADMIN_ALLOWED_HOSTS", "admin.example.com")
    reset_settings()

    # The server refuses to start, and an app built anyway answers loopback names only
    with pytest.raises(SettingsError, match="ADMIN_ALLOWED_HOSTS"):
        bind_address("127.0.0.1")
    with TestClient(create_app(session_secret="s" * 32), base_url=BASE_URL) as client:
        assert client.get("/admin/api/queues", headers={"Host": "admin.example.com"}).status_code == 400


@pytest.fixture
def hosted_client(with_auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The admin with passwords, served as admin.example.com (and any name under ops.example.com)."""
    from app.admin import create_app
    from app.settings import reset_settings

    monkeypatch.setenv("ADMIN_ALLOWED_HOSTS", "admin.example.com, *.ops.example.com")
    reset_settings()
    with TestClient(create_app(session_secret="s" * 32), base_url="http://admin.example.com") as client:
        yield client


def test_rebinding_with_passwords_is_refused(hosted_client: TestClient) -> None:
    assert hosted_client.get("/admin/api/queues", auth=ADMIN).status_code == 200
    assert hosted_client.get(
        "/admin/api/queues", auth=ADMIN, headers={"Host": "a.ops.example.com"}
    ).is_success
    for host in (REBOUND, "127.0.0.1", "admin.example.com.attacker.example", "ops.example.com"):
        response = hosted_client.get("/admin/api/queues", auth=ADMIN, headers={"Host": host})
        assert response.status_code == 400, host


def test_probes_answer_any_host(hosted_client: TestClient) -> None:
    # Kubernetes probes and Prometheus address the pod by IP
    for path in ("/health", "/health/ready", "/metrics"):
        assert hosted_client.get(path, headers={"Host": "10.1.2.3:8500"}).status_code == 200


def test_writes_from_another_origin_are_refused(hosted_client: TestClient) -> None:
    dead_letter_id = add_dead_letter()
    token = csrf(hosted_client, ADMIN)
    body = {"ids": [dead_letter_id]}

    def discard(**headers: str) -> int:
        response = hosted_client.post(
            "/admin/api/dead-letters/discard", json=body, auth=ADMIN, headers={**token, **headers}
        )
        return response.status_code

    # A page elsewhere (or a sandboxed frame) cannot write, even with a valid token
    assert discard(Origin="http://attacker.example") == 403
    assert discard(Origin="null") == 403
    assert discard(Origin="http://admin.example.com:8080") == 403
    assert discard(Referer="http://attacker.example/page") == 403
    # The login and logout forms are writes too
    login = hosted_client.post(
        "/admin/login",
        data={"user": "admin", "password": ADMIN[1]},
        headers={"Origin": "http://evil.example"},
    )
    assert login.status_code == 403
    assert hosted_client.post("/admin/logout", headers={"Origin": "http://evil.example"}).status_code == 403
    # The admin's own pages (Origin = Host) and scripts (no Origin) can
    assert discard(Origin="http://admin.example.com") == 200


def test_security_settings_that_cannot_work_stop_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import load_settings

    for name, value, message in (
        ("ADMIN_TRUSTED_PROXIES", "10.0.0.0/33", "ADMIN_TRUSTED_PROXIES: must be IP addresses or CIDRs"),
        ("ADMIN_SESSION_SECRET", "short", "ADMIN_SESSION_SECRET: must be at least 32 characters"),
        ("ADMIN_SESSION_IDLE_S", "90000", "ADMIN_SESSION_IDLE_S: must not exceed ADMIN_SESSION_MAX_AGE_S"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(SettingsError, match=message):
                load_settings()
