"""Dead letters: listing grouped by fingerprint, detail, and requeue/discard with roles and CSRF."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.models import AuditEvent, DeadLetter
from app.db.session import session_scope
from tests.integration.admin.conftest import ADMIN, VIEWER, add_dead_letter, csrf

pytestmark = pytest.mark.integration

OTHER_FINGERPRINT = "0" * 40


def _row(dead_letter_id: int) -> DeadLetter:
    with session_scope() as session:
        row = session.get(DeadLetter, dead_letter_id)
        assert row is not None
        return row


def _queued_message_ids(client: Any, queue: str) -> list[str]:
    """Dramatiq message ids of the ready messages of ``queue`` (stored under their redis ids)."""
    redis_ids = client.lrange(f"dramatiq:{queue}", 0, -1)
    bodies = client.hmget(f"dramatiq:{queue}.msgs", redis_ids) if redis_ids else []
    return [json.loads(body)["message_id"] for body in bodies]


def _audit() -> list[tuple[str, str, str]]:
    with session_scope() as session:
        return [
            (e.who, e.action, e.target) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


def test_listing_groups_by_fingerprint(auth_client: TestClient) -> None:
    # Given three letters of one cause, one of another, one already discarded
    first = [add_dead_letter() for _ in range(3)]
    other = add_dead_letter(
        queue="sync", actor="sync_entities", exception_type="RetryableError", fingerprint=OTHER_FINGERPRINT,
        exception_message="SAM.gov 503",
    )  # fmt: skip
    add_dead_letter(status="discarded")

    body = auth_client.get("/admin/api/dead-letters", auth=VIEWER).json()

    assert sorted(item["id"] for item in body["items"]) == sorted([*first, other])
    groups = {g["fingerprint"]: g for g in body["groups"]}
    assert groups["f" * 40]["count"] == 3 and groups["f" * 40]["latest_id"] == max(first)
    assert groups[OTHER_FINGERPRINT]["count"] == 1
    assert groups[OTHER_FINGERPRINT]["latest_message"] == "SAM.gov 503"
    assert "traceback" not in body["items"][0]


def test_listing_filters(auth_client: TestClient) -> None:
    add_dead_letter()
    sync_id = add_dead_letter(queue="sync", actor="sync_entities", fingerprint=OTHER_FINGERPRINT)
    discarded = add_dead_letter(status="discarded")

    def ids(**params: str) -> list[int]:
        response = auth_client.get("/admin/api/dead-letters", params=params, auth=VIEWER)
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert ids(queue="sync") == [sync_id]
    assert ids(actor="sync_entities") == [sync_id]
    assert ids(fingerprint=OTHER_FINGERPRINT) == [sync_id]
    assert ids(status="discarded") == [discarded]
    assert len(ids(status="all")) == 3


def test_detail(auth_client: TestClient) -> None:
    dead_letter_id = add_dead_letter(kwargs={"user_id": 77})

    body = auth_client.get(f"/admin/api/dead-letters/{dead_letter_id}", auth=VIEWER).json()

    assert body["kwargs"] == {"user_id": 77}
    assert body["traceback"].startswith("Traceback")
    assert auth_client.get("/admin/api/dead-letters/999999", auth=VIEWER).status_code == 404
    page = auth_client.get(f"/admin/dead-letters/{dead_letter_id}", auth=VIEWER)
    assert page.status_code == 200 and "PermanentError" in page.text and "77" in page.text


def test_dead_letters_page(auth_client: TestClient) -> None:
    add_dead_letter(exception_message="user 5 vanished")

    as_viewer = auth_client.get("/admin/dead-letters", auth=VIEWER)
    as_admin = auth_client.get("/admin/dead-letters", auth=ADMIN)

    assert as_viewer.status_code == 200 and "user 5 vanished" in as_viewer.text
    assert 'data-action="requeue"' not in as_viewer.text  # no write buttons for a viewer
    assert 'data-action="requeue"' in as_admin.text


def test_admin_requeues_by_id(auth_client: TestClient, redis_client: object) -> None:
    # Given two dead letters
    target = add_dead_letter(kwargs={"user_id": 5})
    untouched = add_dead_letter()

    # When the admin requeues one, with the CSRF token of its session
    headers = csrf(auth_client, ADMIN)
    response = auth_client.post(
        "/admin/api/dead-letters/requeue", json={"ids": [target]}, headers=headers, auth=ADMIN
    )

    # Then a fresh copy waits on its queue, the row says who requeued it, and the audit log too
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["requeued"] == 1
    new_id = body["messages"][0]["new_message_id"]
    assert _queued_message_ids(redis_client, "email") == [new_id]
    row = _row(target)
    assert (row.status, row.requeued_by, row.requeued_message_id) == ("requeued", "admin", new_id)
    assert _row(untouched).status == "dead"
    assert _audit() == [("admin", "dead_letter.requeue", f"dead_letter:{target}")]


def test_admin_discards_by_fingerprint(auth_client: TestClient) -> None:
    same = [add_dead_letter(), add_dead_letter()]
    other = add_dead_letter(fingerprint=OTHER_FINGERPRINT)

    response = auth_client.post(
        "/admin/api/dead-letters/discard",
        json={"fingerprint": "f" * 40},
        headers=csrf(auth_client, ADMIN),
        auth=ADMIN,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"discarded": 2}
    assert [_row(i).status for i in same] == ["discarded", "discarded"]
    assert _row(same[0]).discarded_by == "admin"
    assert _row(other).status == "dead"
    assert {a[1] for a in _audit()} == {"dead_letter.discard"}


def test_viewer_cannot_write(auth_client: TestClient) -> None:
    dead_letter_id = add_dead_letter()
    headers = csrf(auth_client, VIEWER)

    for action in ("requeue", "discard"):
        response = auth_client.post(
            f"/admin/api/dead-letters/{action}", json={"ids": [dead_letter_id]}, headers=headers, auth=VIEWER
        )
        assert response.status_code == 403
    assert _row(dead_letter_id).status == "dead"
    assert _audit() == []


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_write_without_the_sessions_csrf_token_is_refused(auth_client: TestClient, token: str | None) -> None:
    dead_letter_id = add_dead_letter()
    csrf(auth_client, ADMIN)  # the session has a token; the request does not carry it
    headers = {} if token is None else {"X-CSRF-Token": token}

    response = auth_client.post(
        "/admin/api/dead-letters/requeue", json={"ids": [dead_letter_id]}, headers=headers, auth=ADMIN
    )

    assert response.status_code == 403
    assert "X-CSRF-Token" in response.json()["detail"]
    assert _row(dead_letter_id).status == "dead"


def test_csrf_token_of_another_session_is_refused(auth_client: TestClient) -> None:
    dead_letter_id = add_dead_letter()
    stolen = csrf(auth_client, ADMIN)
    auth_client.cookies.clear()  # a different browser: no session cookie

    response = auth_client.post(
        "/admin/api/dead-letters/discard", json={"ids": [dead_letter_id]}, headers=stolen, auth=ADMIN
    )

    assert response.status_code == 403
    assert _row(dead_letter_id).status == "dead"
    assert _audit() == []


def test_empty_selection_is_refused(auth_client: TestClient) -> None:
    add_dead_letter()

    response = auth_client.post(
        "/admin/api/dead-letters/discard", json={}, headers=csrf(auth_client, ADMIN), auth=ADMIN
    )

    assert response.status_code == 422
    assert _audit() == []


def test_undecodable_letter_cannot_be_requeued(auth_client: TestClient) -> None:
    dead_letter_id = add_dead_letter(actor="(undecodable)", raw_payload="{not json")

    response = auth_client.post(
        "/admin/api/dead-letters/requeue", json={"ids": [dead_letter_id]}, headers=csrf(auth_client, ADMIN),
        auth=ADMIN,
    )  # fmt: skip

    assert response.status_code == 409
    assert _row(dead_letter_id).status == "dead"


def test_without_passwords_writes_still_need_csrf_and_are_audited_as_local(client: TestClient) -> None:
    dead_letter_id = add_dead_letter()

    refused = client.post("/admin/api/dead-letters/discard", json={"ids": [dead_letter_id]})
    accepted = client.post(
        "/admin/api/dead-letters/discard", json={"ids": [dead_letter_id]}, headers=csrf(client)
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert _row(dead_letter_id).discarded_by == "local"
    assert _audit() == [("local", "dead_letter.discard", f"dead_letter:{dead_letter_id}")]


def test_pages_escape_what_failed_jobs_wrote(auth_client: TestClient) -> None:
    dead_letter_id = add_dead_letter(exception_message="<script>alert(1)</script>")

    for path in ("/admin/dead-letters", f"/admin/dead-letters/{dead_letter_id}"):
        text = auth_client.get(path, auth=VIEWER).text
        assert "<script>alert(1)</script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
