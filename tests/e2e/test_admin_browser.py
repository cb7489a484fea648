"""The admin in a real browser: headless Chromium (Debian's, driven by Playwright) against ``jobs admin``.

The admin runs as its own process (uvicorn, as in production) on real Redis and PostgreSQL; the test seeds
dead letters, job history and one ready email message directly, then logs in, reads the pages, clicks the
write buttons (which go through admin.js, the CSRF token and the JSON API) and checks Redis and the database.
One test visits every page (the nav's, so pages added later are covered) over data full of hostile strings
and asserts no dialog, no CSP violation.

Chromium must be at ``/usr/bin/chromium`` (``make test-deps``); it is never downloaded. Without it the tests
skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from sqlalchemy import select

from app import enqueue
from app.db.models import AuditEvent, DeadLetter, JobRun
from app.db.session import session_scope
from tests.support.helpers import ROOT, free_port, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("JOBS_TEST_CHROMIUM", "/usr/bin/chromium"))
#: Headless and offline: as root (no sandbox), no GPU, and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
#: Playwright's timeout for each expect/click (ms): generous for a loaded CI machine, far below pytest's 120 s.
UI_TIMEOUT_MS = 15_000

ADMIN_PASSWORD = "browser admin pass"
VIEWER_PASSWORD = "browser viewer pass"

WELCOME_FINGERPRINT = "a" * 40
SYNC_FINGERPRINT = "b" * 40
INJECTION = "<img src=x onerror=alert(1)>"
CORRELATION_ID = "corr-browser-7"
#: The rows of the "By cause" table of the dead-letters page.
GROUP_ROWS = "h2:text-is('By cause') + table.data tbody tr"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; skipped (locally) or failed (CI) when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"Chromium is not installed at {CHROMIUM}: apt-get install chromium (make test-deps)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, storage) for one operator."""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def admin_url(platform_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``jobs admin`` on a free loopback port with both passwords set; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        **platform_env,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ADMIN_VIEWER_PASSWORD": VIEWER_PASSWORD,
        "PYTHONPATH": str(ROOT),
    }
    log_path = tmp_path / "admin.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "admin", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"admin exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            return httpx.get(f"{base}/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=30, what="the admin's /health")
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@dataclass(frozen=True)
class Seeded:
    """What :func:`seeded` wrote: dead letter ids by cause, job message ids by actor."""

    welcome_letters: list[int]
    sync_letter: int
    welcome_runs: list[str]
    pdf_run: str


@pytest.fixture
def seeded(platform_env: dict[str, str], redis_client: redis.Redis[bytes]) -> Seeded:
    """Two causes of dead letters (one with HTML in its message), three job runs, one ready email."""
    now = dt.datetime.now(dt.UTC)
    welcome = [
        add_dead_letter(kwargs={"user_id": n}, exception_message=f"user {n} not found", minutes_ago=n)
        for n in (1, 2)
    ]
    sync = add_dead_letter(
        queue="sync", actor="sync_entities", kwargs={}, exception_type="RetryableError",
        exception_message=f"SAM.gov answered {INJECTION}", fingerprint=SYNC_FINGERPRINT, minutes_ago=3,
    )  # fmt: skip
    welcome_runs = [
        add_job_run(actor="send_welcome_email", queue="email", args_text='{"user_id": 1}', at=now),
        add_job_run(
            actor="send_welcome_email", queue="email", args_text='{"user_id": 2}', at=now,
            correlation_id=CORRELATION_ID,
        ),
    ]  # fmt: skip
    pdf_run = add_job_run(
        actor="generate_proposal_pdf", queue="documents", args_text='{"proposal_id": 9}', at=now,
        correlation_id=CORRELATION_ID,
    )  # fmt: skip
    enqueue.send("send_welcome_email", user_id=1)
    assert redis_client.llen("dramatiq:email") == 1
    return Seeded(welcome, sync, welcome_runs, pdf_run)


def add_dead_letter(
    *,
    kwargs: dict[str, Any],
    exception_message: str,
    minutes_ago: int,
    queue: str = "email",
    actor: str = "send_welcome_email",
    exception_type: str = "PermanentError",
    fingerprint: str = WELCOME_FINGERPRINT,
) -> int:
    """A dead letter as the archive middleware writes it; returns its id."""
    message_id = uuid.uuid4().hex
    with session_scope() as session:
        row = DeadLetter(
            message_id=message_id,
            queue=queue,
            actor=actor,
            kwargs=kwargs,
            options={"correlation_id": f"corr-{message_id[:8]}"},
            reason="failed",
            exception_type=exception_type,
            exception_message=exception_message,
            traceback=f"Traceback (most recent call last):\n  ...\n{exception_type}: {exception_message}",
            fingerprint=fingerprint,
            attempts=3,
            correlation_id=f"corr-{message_id[:8]}",
            failed_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago),
        )
        session.add(row)
        session.flush()
        return row.id


def add_job_run(
    *, actor: str, queue: str, args_text: str, at: dt.datetime, correlation_id: str | None = None
) -> str:
    message_id = uuid.uuid4().hex
    with session_scope() as session:
        session.add(
            JobRun(
                message_id=message_id, queue=queue, actor=actor, status="succeeded", attempts=1,
                enqueued_at=at - dt.timedelta(seconds=30), started_at=at - dt.timedelta(seconds=20),
                finished_at=at - dt.timedelta(seconds=19), duration_ms=850.0,
                correlation_id=correlation_id, args_text=args_text,
            )
        )  # fmt: skip
    return message_id


def letter(dead_letter_id: int) -> DeadLetter:
    with session_scope() as session:
        row = session.get(DeadLetter, dead_letter_id)
        assert row is not None
        session.expunge(row)
        return row


def audit() -> list[tuple[str, str, str]]:
    with session_scope() as session:
        return [
            (e.who, e.action, e.target) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


# ------------------------------------------------------------------------------------------------- helpers


def log_in(page: Page, base: str, user: str, password: str) -> None:
    """Fill the login form (reached through the redirect of a protected page) and land on the queues."""
    page.goto(f"{base}/admin/queues")
    expect(page).to_have_url(f"{base}/admin/login?next=/admin/queues")
    page.get_by_label("User").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/admin/queues")


def record_dialogs(page: Page) -> list[str]:
    """Accept every dialog (admin.js asks to confirm each write) and note ``type: message`` of each."""
    seen: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        seen.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()

    page.on("dialog", on_dialog)
    return seen


def queue_row(page: Page, queue: str) -> dict[str, str]:
    """One row of the queues table as ``{column header: cell text}``."""
    headers = [h.strip() for h in page.locator("table.data thead th").all_inner_texts()]
    row = page.locator("table.data tbody tr").filter(has=page.get_by_role("link", name=queue, exact=True))
    expect(row).to_have_count(1)
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    return dict(zip(headers, cells, strict=True))


def letter_row(page: Page, dead_letter_id: int) -> Locator:
    """The row of the "Letters" table whose id link is ``dead_letter_id``."""
    letters = page.locator("h2:text-is('Letters') ~ table.data tbody tr")
    return letters.filter(has=page.get_by_role("link", name=str(dead_letter_id), exact=True))


# --------------------------------------------------------------------------------------------------- tests


def test_login_refuses_a_wrong_password_and_lets_the_admin_in(
    context: BrowserContext, admin_url: str
) -> None:
    # Given a protected admin and a browser without a session
    page = context.new_page()

    # When the operator opens a page, the admin sends them to the login form; a wrong password is refused
    page.goto(f"{admin_url}/admin/queues")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("User").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()

    # Then the form says so and no session exists
    expect(page.locator("p.error")).to_have_text("Wrong user or password.")
    expect(page.locator("header .who")).to_have_count(0)

    # When they log in with the right password, they land on the page they asked for, as admin
    page.get_by_label("User").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{admin_url}/admin/queues")
    expect(page.locator("header .who")).to_contain_text("admin")
    expect(page.locator("header .role")).to_have_text("admin")


def test_queues_page_shows_every_queue_and_the_nav_links_work(
    context: BrowserContext, admin_url: str, seeded: Seeded, tmp_path: Path
) -> None:
    # Given one ready email message and dead letters on email (2) and sync (1)
    page = context.new_page()
    log_in(page, admin_url, "admin", ADMIN_PASSWORD)

    # When the admin reads the queues page
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    page.screenshot(path=str(tmp_path / "admin-queues.png"), full_page=True)

    # Then each queue has its row, with the numbers read from Redis and the database
    names = page.locator("table.data tbody tr td:first-child").all_inner_texts()
    assert [n.strip() for n in names] == ["email", "documents", "sync"]
    email = queue_row(page, "email")
    assert (email["Ready"], email["Dead"], email["Workers"]) == ("1", "2", "none")
    assert queue_row(page, "documents")["Ready"] == "0"
    assert queue_row(page, "sync")["Dead"] == "1"
    # And the numbers are right-aligned (the stylesheet's td.num once lost to the table's default)
    expect(page.locator("table.data tbody td.num").first).to_have_css("text-align", "right")

    # And every nav link leads to its page and marks itself active
    for link, path, heading in (
        ("Dead letters", "/admin/dead-letters", "Dead letters"),
        ("Jobs", "/admin/jobs", "Jobs"),
        ("Workers", "/admin/workers", "Workers"),
        ("Queues", "/admin/queues", "Queues"),
    ):
        page.locator("header nav").get_by_role("link", name=link, exact=True).click()
        expect(page).to_have_url(f"{admin_url}{path}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.locator("header nav a.active")).to_have_text(link)

    # And a queue's name opens its detail page
    page.get_by_role("link", name="email", exact=True).click()
    expect(page).to_have_url(f"{admin_url}/admin/queues/email")
    expect(page.locator("dl.stats")).to_contain_text("Ready")


def test_admin_requeues_one_dead_letter(
    context: BrowserContext, admin_url: str, seeded: Seeded, redis_client: redis.Redis[bytes], tmp_path: Path
) -> None:
    # Given the dead-letters page with two causes
    page = context.new_page()
    dialogs = record_dialogs(page)
    log_in(page, admin_url, "admin", ADMIN_PASSWORD)
    page.goto(f"{admin_url}/admin/dead-letters")
    groups = page.locator(GROUP_ROWS)
    expect(groups).to_have_count(2)
    expect(groups.filter(has_text="send_welcome_email")).to_contain_text("2")
    expect(groups.filter(has_text="sync_entities")).to_contain_text("RetryableError")
    page.screenshot(path=str(tmp_path / "admin-dead-letters.png"), full_page=True)
    # (the filter's selects and text fields line up, as they once did not)
    boxes = [
        page.locator(f"form.filters [name={name}]").bounding_box() for name in ("queue", "actor", "status")
    ]
    assert len({(box["y"], box["height"]) for box in boxes if box}) == 1, boxes
    target, other = seeded.welcome_letters
    ready_before = redis_client.llen("dramatiq:email")

    # When the admin ticks one letter and clicks "Requeue selected", confirming the dialog
    letter_row(page, target).get_by_role("checkbox").check()
    page.get_by_role("button", name="Requeue selected").click()

    # Then the page reports it and, after reloading, no longer lists the letter as dead
    expect(page.locator("#flash")).to_have_text("Requeued 1.")
    expect(letter_row(page, target)).to_have_count(0)
    expect(letter_row(page, other)).to_have_count(1)
    assert dialogs == ["confirm: Requeue 1 dead letter(s)?"]

    # And a fresh copy waits on the email queue, the row says who requeued it, and the audit log too
    assert redis_client.llen("dramatiq:email") == ready_before + 1
    row = letter(target)
    assert (row.status, row.requeued_by) == ("requeued", "admin")
    assert row.requeued_message_id is not None
    assert letter(other).status == "dead"
    assert audit() == [("admin", "dead_letter.requeue", f"dead_letter:{target}")]

    # And the "requeued" filter shows it with its new status and who did it
    page.get_by_label("Status").select_option("requeued")
    page.get_by_role("button", name="Filter").click()
    expect(letter_row(page, target)).to_contain_text("requeued by admin")


def test_jobs_search_filters_by_actor_and_correlation_id(
    context: BrowserContext, admin_url: str, seeded: Seeded
) -> None:
    # Given three job runs: two welcome emails (one correlated) and a PDF sharing the correlation id
    page = context.new_page()
    log_in(page, admin_url, "admin", ADMIN_PASSWORD)
    page.goto(f"{admin_url}/admin/jobs")
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(3)

    # When the admin searches by actor
    page.get_by_label("Actor").fill("generate_proposal_pdf")
    page.get_by_role("button", name="Search").click()

    # Then only that actor's run is listed
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(seeded.pdf_run)

    # When they search by correlation id instead
    page.get_by_label("Actor").fill("")
    page.get_by_label("Correlation id").fill(CORRELATION_ID)
    page.get_by_role("button", name="Search").click()

    # Then both runs of that request are listed, and no other
    expect(rows).to_have_count(2)
    listed = " ".join(rows.all_inner_texts())
    assert seeded.pdf_run in listed and seeded.welcome_runs[1] in listed
    assert seeded.welcome_runs[0] not in listed


def test_viewer_sees_no_write_buttons_and_the_api_refuses_writes(
    browser: Browser, admin_url: str, seeded: Seeded, redis_client: redis.Redis[bytes]
) -> None:
    # Given a viewer logged in in a browser profile of their own
    viewer = browser.new_context(viewport=VIEWPORT)
    viewer.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = viewer.new_page()
        log_in(page, admin_url, "viewer", VIEWER_PASSWORD)
        expect(page.locator("header .role")).to_have_text("viewer")

        # When they open the dead letters and one letter's page
        page.goto(f"{admin_url}/admin/dead-letters")
        expect(page.locator(GROUP_ROWS)).to_have_count(2)

        # Then no write control is offered anywhere
        expect(page.locator("button[data-action]")).to_have_count(0)
        expect(page.get_by_role("checkbox")).to_have_count(0)
        page.goto(f"{admin_url}/admin/dead-letters/{seeded.welcome_letters[0]}")
        expect(page.get_by_role("heading", name=f"Dead letter {seeded.welcome_letters[0]}")).to_be_visible()
        expect(page.locator("button[data-action]")).to_have_count(0)

        # When they try anyway, from the page, with the page's own CSRF token
        status, detail = page.evaluate(
            """async (id) => {
                const token = document.querySelector('meta[name="csrf-token"]').content;
                const response = await fetch("/admin/api/dead-letters/requeue", {
                    method: "POST", credentials: "same-origin",
                    headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
                    body: JSON.stringify({ids: [id]}),
                });
                return [response.status, (await response.json()).detail];
            }""",
            seeded.welcome_letters[0],
        )

        # Then the API refuses, and nothing changed
        assert (status, detail) == (403, "the admin role is required")
        assert letter(seeded.welcome_letters[0]).status == "dead"
        assert redis_client.llen("dramatiq:email") == 1
        assert audit() == []
    finally:
        viewer.close()


def test_html_in_an_exception_message_is_shown_as_text(
    context: BrowserContext, admin_url: str, seeded: Seeded
) -> None:
    # Given a dead letter whose exception message carries an HTML injection, and a page watching for dialogs
    page = context.new_page()
    dialogs = record_dialogs(page)
    log_in(page, admin_url, "admin", ADMIN_PASSWORD)

    for path in ("/admin/dead-letters", f"/admin/dead-letters/{seeded.sync_letter}", "/admin/queues/sync"):
        # When the admin opens a page that shows the message
        page.goto(f"{admin_url}{path}")

        # Then the markup is visible as text, no element was made of it, and no script ran
        expect(page.get_by_text(INJECTION).first).to_be_visible()
        expect(page.locator("main img")).to_have_count(0)
    assert dialogs == []


# ---------------------------------------------------------------------------------- hostile data (issue 14)

#: What an attacker can make a failing job write: markup, script URLs, template syntax, broken quoting.
HOSTILE = [
    "<script>alert('s1')</script>",
    '"><img src=x onerror=alert("s2")>',
    "'><svg onload=alert('s3')>",
    "</textarea></pre><script>alert('s4')</script>",
    "javascript:alert('s5')",
    "{{ 7*7 }}{% raw %}",
    "<base href='https://evil.example/'><form action='https://evil.example/'>",
    "<iframe srcdoc='<script>alert(6)</script>'></iframe>",
]
#: Records every CSP violation the page reports, before any of its own scripts runs.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def seed_hostile(redis_client: redis.Redis[bytes]) -> list[int]:
    """Dead letters, job runs and a worker heartbeat carrying :data:`HOSTILE` in every text they show."""
    ids = []
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        for n, text in enumerate(HOSTILE):
            short = text[:40]
            row = DeadLetter(
                message_id=uuid.uuid4().hex, queue="email", actor=text[:128], args=[text],
                kwargs={"x": text}, options={"correlation_id": text[:64], "hostile": text},
                raw_payload=text, reason="failed", exception_type=text, exception_message=text,
                traceback=f"Traceback:\n{text}", fingerprint=short, attempts=n + 1,
                correlation_id=text[:64], idempotency_key=text, failed_at=now - dt.timedelta(minutes=n),
            )  # fmt: skip
            session.add(row)
            session.add(
                JobRun(
                    message_id=uuid.uuid4().hex, queue="email", actor=text[:128], status="dead", attempts=1,
                    enqueued_at=now, started_at=now, finished_at=now, duration_ms=1.0, error=text,
                    correlation_id=text[:64], args_text=json.dumps({"x": text}),
                )
            )  # fmt: skip
            session.flush()
            ids.append(row.id)
    key = f"jobs:heartbeat:email:{HOSTILE[1][:30]}:4242"
    body = {
        "host": HOSTILE[0],
        "pid": 4242,
        "queues": ["email", HOSTILE[2]],
        "threads": 1,
        "started": time.time(),
    }
    redis_client.set(key, json.dumps(body), ex=120)
    redis_client.zadd("jobs:workers", {key: time.time() + 120})
    return ids


def test_every_page_with_hostile_data_shows_it_as_text_without_a_dialog_or_csp_violation(
    browser: Browser, admin_url: str, redis_client: redis.Redis[bytes]
) -> None:
    # Given dead letters, job history and a worker full of hostile strings, and a browser watching for
    # dialogs, script errors and CSP violations on every page
    ids = seed_hostile(redis_client)
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    ctx.add_init_script(WATCH_CSP)
    try:
        page = ctx.new_page()
        dialogs = record_dialogs(page)
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        violations: list[str] = []

        def visit(path: str) -> None:
            response = page.goto(f"{admin_url}{path}")
            assert response is not None and response.status < 400, (path, response and response.status)
            page.wait_for_load_state("load")
            violations.extend(f"{path}: {v}" for v in page.evaluate("window.__cspViolations"))

        # The login form (logged out), then every page of the nav, each queue, each letter, searches
        visit("/admin/login")
        log_in(page, admin_url, "admin", ADMIN_PASSWORD)
        nav = [a.get_attribute("href") or "" for a in page.locator("header nav a").all()]
        paths = [
            *nav,
            *(f"/admin/queues/{queue}" for queue in ("email", "documents", "sync")),
            "/admin/dead-letters?status=all",
            f"/admin/dead-letters?fingerprint={quote(HOSTILE[1][:40])}",
            *(f"/admin/dead-letters/{i}" for i in ids),
            f"/admin/jobs?q={quote(HOSTILE[3])}&actor={quote(HOSTILE[1])}",
            f"/admin/jobs?correlation_id={quote(HOSTILE[0])}",
        ]
        for path in paths:
            visit(path)
        # The markup is shown as text where it belongs
        visit(f"/admin/dead-letters/{ids[1]}")
        expect(page.locator("main").get_by_text(HOSTILE[1]).first).to_be_visible()
        expect(page.locator("main img, main script, main svg, main iframe, main base")).to_have_count(0)
        visit("/admin/workers")
        expect(page.locator("main").get_by_text(HOSTILE[0]).first).to_be_visible()
        # The API docs: vendored Swagger UI, rendered, under the same CSP
        visit("/admin/api/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("jobs admin")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()

        # Then no script of the data ran, the CSP had nothing to block, and no page script failed
        assert dialogs == []
        assert violations == []
        assert [e for e in errors if "Content Security Policy" in e or "alert" in e] == []
        # (and the watcher does see a violation when there is one: an image from elsewhere is blocked)
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=\"http://192.0.2.1/x.png\">')")
        page.wait_for_function("window.__cspViolations.length > 0")
        assert page.evaluate("window.__cspViolations")[0].startswith("img-src")
        assert len(nav) >= 4
    finally:
        ctx.close()
