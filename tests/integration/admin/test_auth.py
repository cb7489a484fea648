"""Logins: HTTP Basic and the login form, roles, the loopback-only rule without passwords, OpenAPI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.errors import SettingsError
from tests.integration.admin.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    BASE_URL,
    VIEWER,
    add_dead_letter,
    log_in,
)

pytestmark = pytest.mark.integration


def test_api_requires_credentials(auth_client: TestClient) -> None:
    missing = auth_client.get("/admin/api/queues")
    wrong = auth_client.get("/admin/api/queues", auth=("admin", "guess"))
    swapped = auth_client.get("/admin/api/queues", auth=("viewer", ADMIN_PASSWORD))

    for response in (missing, wrong, swapped):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
    assert auth_client.get("/admin/api/queues", auth=ADMIN).status_code == 200
    assert auth_client.get("/admin/api/queues", auth=VIEWER).status_code == 200


def test_pages_redirect_to_the_login_form(auth_client: TestClient) -> None:
    response = auth_client.get("/admin/dead-letters?queue=email", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/dead-letters%3Fqueue%3Demail"
    assert "Log in" in auth_client.get(response.headers["location"]).text


def test_login_form_starts_a_session_that_can_write(auth_client: TestClient) -> None:
    dead_letter_id = add_dead_letter()

    # Given a wrong password, then the right one
    refused = log_in(auth_client, "admin", "nope")
    response = log_in(auth_client, "admin", ADMIN_PASSWORD, next="/admin/workers")

    assert refused.status_code == 401 and "Wrong user or password" in refused.text
    assert response.status_code == 303 and response.headers["location"] == "/admin/workers"
    # Then the session cookie alone authenticates, and the page carries the CSRF token admin.js sends
    page = auth_client.get("/admin/queues")
    assert page.status_code == 200 and "admin" in page.text
    token = auth_client.get("/admin/api/csrf").json()["csrf_token"]
    assert f'<meta name="csrf-token" content="{token}">' in page.text
    discarded = auth_client.post(
        "/admin/api/dead-letters/discard", json={"ids": [dead_letter_id]}, headers={"X-CSRF-Token": token}
    )
    assert discarded.status_code == 200 and discarded.json() == {"discarded": 1}

    # And logging out ends it
    auth_client.post("/admin/logout", data={"csrf_token": token})
    assert auth_client.get("/admin/api/queues").status_code == 401


def test_login_never_redirects_off_site(auth_client: TestClient) -> None:
    response = log_in(auth_client, "viewer", VIEWER[1], next="https://evil.example/")

    assert response.headers["location"] == "/admin/queues"


def test_no_passwords_no_login(client: TestClient) -> None:
    assert client.get("/admin/api/queues").status_code == 200
    assert client.get("/admin/api/csrf").json()["user"] == "local"


def test_bind_address_without_passwords_is_loopback_only(no_auth: dict[str, str]) -> None:
    from app.admin.server import bind_address

    assert bind_address("127.0.0.1") == "127.0.0.1"
    assert bind_address("localhost") == "127.0.0.1"
    for host in ("0.0.0.0", "::", "10.1.2.3"):
        with pytest.raises(SettingsError, match="ADMIN_PASSWORD"):
            bind_address(host)


def test_bind_address_with_passwords_is_free(with_auth: dict[str, str]) -> None:
    from app.admin.server import bind_address

    assert bind_address("0.0.0.0") == "0.0.0.0"


def test_openapi_document(auth_client: TestClient) -> None:
    spec = auth_client.get("/admin/api/openapi.json", auth=VIEWER)

    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in (
        "/admin/api/queues",
        "/admin/api/dead-letters",
        "/admin/api/dead-letters/{dead_letter_id}",
        "/admin/api/dead-letters/requeue",
        "/admin/api/jobs",
        "/admin/api/workers",
        "/health/ready",
    ):
        assert path in paths
    assert "/admin/queues" not in paths  # pages are not API


def test_static_css(auth_client: TestClient) -> None:
    response = auth_client.get("/admin/static/admin.css")

    assert response.status_code == 200 and "table.data" in response.text


def test_mounted_inside_another_asgi_app(with_auth: dict[str, str]) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from app.admin import create_app

    # Given the admin mounted under /ops of the web app
    parent = Starlette(routes=[Mount("/ops", app=create_app(session_secret="s"))])
    with TestClient(parent, base_url=BASE_URL) as client:
        assert client.get("/ops/health").json() == {"status": "ok"}
        assert client.get("/ops/admin/api/queues").status_code == 401
        redirect = client.get("/ops/admin/jobs", follow_redirects=False)
        assert redirect.headers["location"] == "/ops/admin/login?next=/admin/jobs"

        form = client.get("/ops/admin/login").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        logged_in = client.post(
            "/ops/admin/login",
            data={"user": "viewer", "password": VIEWER[1], "next": "/admin/jobs", "csrf_token": token},
            follow_redirects=False,
        )
        assert logged_in.headers["location"] == "/ops/admin/jobs"
        page = client.get("/ops/admin/jobs")
        assert page.status_code == 200
        assert 'href="/ops/admin/workers"' in page.text and 'href="/admin/' not in page.text
        assert client.get("/ops/admin/static/admin.js").status_code == 200
