"""Findings 5, 6 and 7 in part: the API docs are vendored and behind login; odd input is a 4xx (never a 500)
with the security headers; a malformed worker heartbeat breaks no page; 500s carry the headers too;
``no-store`` on data responses; the tighter CSP."""

from __future__ import annotations

import json
import re
import time

import pytest
import redis
from fastapi.testclient import TestClient

from tests.integration.admin.conftest import ADMIN, BASE_URL, VIEWER, add_dead_letter, csrf

pytestmark = pytest.mark.integration

BEYOND_64_BITS = 2**63


def assert_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "form-action 'self'" in csp and "base-uri 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_api_docs_are_vendored_and_behind_login(auth_client: TestClient) -> None:
    # Without a login: the page sends to the login form, the document is 401
    redirect = auth_client.get("/admin/api/docs", follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/admin/login")
    assert auth_client.get("/admin/api/openapi.json").status_code == 401

    # With one: Swagger UI from the admin's own static files, under the same CSP as every page
    page = auth_client.get("/admin/api/docs", auth=VIEWER)
    assert page.status_code == 200
    assert_headers(page)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.S)
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts]  # type: ignore[union-attr]
    assert sources == ["/admin/static/swagger-ui/swagger-ui-bundle.js", "/admin/static/swagger-ui/docs.js"]
    assert all(body.strip() == "" for _, body in scripts)  # no inline script
    assert "http://" not in page.text and "https://" not in page.text  # nothing third-party
    for asset in (*sources, "/admin/static/swagger-ui/swagger-ui.css"):
        response = auth_client.get(asset)
        assert response.status_code == 200 and len(response.content) > 500
        assert "no-store" not in response.headers.get("cache-control", "")
    spec = auth_client.get("/admin/api/openapi.json", auth=VIEWER).json()
    assert "/admin/api/dead-letters/requeue" in spec["paths"]


def test_odd_input_is_a_4xx_with_the_security_headers(client: TestClient) -> None:
    token = csrf(client)
    dead_letter_id = add_dead_letter()
    responses = {
        "id beyond 64 bits": client.get(f"/admin/api/dead-letters/{BEYOND_64_BITS}"),
        "id beyond 64 bits, page": client.get(f"/admin/dead-letters/{BEYOND_64_BITS}"),
        "negative id": client.get("/admin/api/dead-letters/-1"),
        "huge limit": client.get("/admin/api/jobs?limit=99999999999999999999999"),
        "long filter": client.get("/admin/api/dead-letters", params={"queue": "q" * 5000}),
    }
    bodies = {
        "bulk id beyond 64 bits": f'{{"ids": [{BEYOND_64_BITS}]}}',
        "1e400": '{"ids": [1e400]}',
        "NaN": '{"ids": [NaN]}',
        "Infinity filter": '{"queue": Infinity}',
        "nested": "[" * 5000 + "]" * 5000,
    }
    for name, body in bodies.items():
        responses[name] = client.post(
            "/admin/api/dead-letters/discard",
            content=body,
            headers={**token, "Content-Type": "application/json"},
        )

    for name, response in responses.items():
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert_headers(response)
        assert "1e400" not in response.text and "9223372036854775808" not in response.text, name
    # And nothing was touched
    assert client.get(f"/admin/api/dead-letters/{dead_letter_id}").json()["status"] == "dead"


def test_a_500_carries_the_security_headers(no_auth: dict[str, str]) -> None:
    from app.admin import create_app

    app = create_app(session_secret="s" * 32)

    def broken() -> None:
        raise RuntimeError("a bug with a secret in its message")

    app.add_api_route("/admin/api/broken", broken)
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        response = client.get("/admin/api/broken")

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert_headers(response)


def test_a_malformed_worker_heartbeat_breaks_no_page(
    client: TestClient, redis_client: redis.Redis[bytes]
) -> None:
    # Given one healthy worker and every kind of garbage in the registry
    expires = time.time() + 60
    good = "jobs:heartbeat:email:host-a:101"
    entries = {
        good: json.dumps(
            {"host": "host-a", "pid": 101, "queues": ["email"], "threads": 8, "started": time.time()}
        ),
        "jobs:heartbeat:email:host-b:notapid": "{not json",
        "jobs:heartbeat:email:host-c:103": "[1, 2, 3]",
        "jobs:heartbeat:email:host-d:104": '{"started": NaN, "threads": 1e400, "queues": 5}',
        "jobs:heartbeat:email:host-e:105": '{"pid": 99999999999999999999999, "started": "yesterday"}',
        "jobs:heartbeat:email:host-f:106": '"just a string"',
        "jobs:heartbeat:email:host-g:107": '{"started": 1e400}',
    }
    for key, body in entries.items():
        redis_client.set(key, body, ex=60)
        redis_client.zadd("jobs:workers", {key: expires})
    redis_client.zadd("jobs:workers", {"jobs:heartbeat": expires, b"jobs:heartbeat:email:\xff:1": expires})

    # When the admin lists queues and workers
    for path in ("/admin/queues", "/admin/api/queues", "/admin/workers", "/admin/queues/email"):
        assert client.get(path).status_code == 200, path
    workers = client.get("/admin/api/workers")

    # Then the healthy worker is listed and nothing broke the JSON
    assert workers.status_code == 200
    listed = {(w["host"], w["pid"]) for w in workers.json()}
    assert ("host-a", 101) in listed
    assert all(w["uptime_s"] is None or w["uptime_s"] >= 0 for w in workers.json())


def test_data_responses_are_not_cached(auth_client: TestClient) -> None:
    add_dead_letter(exception_message="customer 42's card was declined")
    for path in ("/admin/api/dead-letters", "/admin/api/jobs", "/admin/api/csrf"):
        assert_headers(auth_client.get(path, auth=ADMIN))
    assert_headers(auth_client.get("/admin/login"))
