"""The ``/admin/schedules`` page: every schedule with its state and recent fires; buttons for the admin only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.admin.conftest import ADMIN, VIEWER, csrf
from tests.integration.admin.test_schedules_api import SCHEDULES

pytestmark = pytest.mark.integration


def test_the_admin_sees_every_schedule_and_its_buttons(auth_client: TestClient) -> None:
    headers = csrf(auth_client, ADMIN)
    auth_client.post("/admin/api/schedules/cleanup/pause", headers=headers, auth=ADMIN)
    fired = auth_client.post("/admin/api/schedules/daily-reminders/run", headers=headers, auth=ADMIN).json()

    page = auth_client.get("/admin/schedules", auth=ADMIN)

    assert page.status_code == 200
    html = page.text
    for name in SCHEDULES:
        assert f'data-schedule="{name}"' in html
    assert 'data-schedule-action="resume" data-name="cleanup"' in html
    assert 'data-schedule-action="pause" data-name="sam-sync"' in html
    assert 'data-schedule-action="run" data-name="weekly-reports"' in html
    assert fired["message_id"][:12] in html  # the run-now is among the recent fires
    assert "/admin/static/schedules.js" in html
    assert 'href="/admin/schedules" class="active"' in html


def test_a_viewer_sees_the_table_without_buttons(auth_client: TestClient) -> None:
    # Without a login, the login form
    stranger = auth_client.get("/admin/schedules", follow_redirects=False)
    assert stranger.status_code == 303 and "/admin/login" in stranger.headers["location"]

    page = auth_client.get("/admin/schedules", auth=VIEWER)

    assert page.status_code == 200
    assert 'data-schedule="sam-sync"' in page.text
    assert "data-schedule-action" not in page.text
