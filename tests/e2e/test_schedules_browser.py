# ruff: noqa: F811  (the fixtures imported from test_admin_browser are parameters of the tests)
"""``/admin/schedules`` in a real browser: headless Chromium against ``jobs admin`` (see test_admin_browser.py).

The buttons go through ``schedules.js``, the session's CSRF token and the JSON API; the test checks the page,
Redis and the audit log. No scheduler runs: pause, resume and run now need no leader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import select

from app.db.models import AuditEvent
from app.db.session import session_scope
from tests.e2e.test_admin_browser import (  # noqa: F401  (fixtures: browser, context, admin_url)
    ADMIN_PASSWORD,
    VIEWER_PASSWORD,
    admin_url,
    browser,
    context,
    log_in,
    record_dialogs,
)

pytestmark = pytest.mark.e2e

SCHEDULES = ["daily-reminders", "sam-sync", "entity-sync", "analytics-refresh", "cleanup", "weekly-reports"]


def audit() -> list[tuple[str, str, str]]:
    with session_scope() as session:
        return [
            (e.who, e.action, e.target) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


def test_admin_pauses_resumes_and_runs_a_schedule(
    context: BrowserContext,
    admin_url: str,
    redis_client: redis.Redis[bytes],
    tmp_path: Path,
) -> None:
    # Given the admin on the schedules page, reached from the nav
    page = context.new_page()
    dialogs = record_dialogs(page)
    log_in(page, admin_url, "admin", ADMIN_PASSWORD)
    page.locator("header nav").get_by_role("link", name="Schedules", exact=True).click()
    expect(page).to_have_url(f"{admin_url}/admin/schedules")
    expect(page.locator("header nav a.active")).to_have_text("Schedules")
    rows = page.locator("#schedules tbody tr")
    expect(rows).to_have_count(len(SCHEDULES))
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.schedule)")) == sorted(SCHEDULES)
    page.screenshot(path=str(tmp_path / "admin-schedules.png"), full_page=True)
    cleanup = page.locator('tr[data-schedule="cleanup"]')
    expect(cleanup.locator("td.state")).to_have_text("active")

    # When they pause `cleanup`
    cleanup.get_by_role("button", name="Pause").click()

    # Then the page says so and, reloaded, shows it paused with a Resume button
    expect(page.locator("#flash")).to_have_text("Paused cleanup.")
    expect(cleanup.locator("td.state")).to_have_text("paused")
    cleanup.get_by_role("button", name="Resume").click()
    expect(page.locator("#flash")).to_have_text("Resumed cleanup.")
    expect(cleanup.locator("td.state")).to_have_text("active")

    # When they fire `daily-reminders` now, confirming the dialog
    page.locator('tr[data-schedule="daily-reminders"]').get_by_role("button", name="Run now").click()

    # Then one message waits on the email queue, named in the flash and in the recent fires
    expect(page.locator("#flash")).to_contain_text("Fired daily-reminders as message ")
    assert dialogs == ["confirm: Fire daily-reminders now?"]
    bodies = [json.loads(b) for b in redis_client.hvals("dramatiq:email.msgs")]
    assert [b["actor_name"] for b in bodies] == ["dispatch_daily_reminders"]
    expect(page.locator("#schedule-runs tbody")).to_contain_text(bodies[0]["message_id"][:12])
    assert audit() == [
        ("admin", "schedule.pause", "schedule:cleanup"),
        ("admin", "schedule.resume", "schedule:cleanup"),
        ("admin", "schedule.run", "schedule:daily-reminders"),
    ]


def test_a_viewer_sees_the_schedules_without_buttons(context: BrowserContext, admin_url: str) -> None:
    page = context.new_page()
    log_in(page, admin_url, "viewer", VIEWER_PASSWORD)
    page.goto(f"{admin_url}/admin/schedules")

    expect(page.locator("#schedules tbody tr")).to_have_count(len(SCHEDULES))
    expect(page.locator("button[data-schedule-action]")).to_have_count(0)
