"""End to end through a real worker process: reports and exports by request id, the weekly email's PDF."""

from __future__ import annotations

import email
import email.policy
import io
from pathlib import Path

import pytest
import redis
from openpyxl import load_workbook

import app.documents
from app import enqueue
from tests.integration.documents.conftest import pdfinfo_pages, pdftotext
from tests.integration.documents.reports_data import UNICODE_NAME, seed_reports
from tests.support.helpers import wait_for
from tests.support.worker import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

WEEK = "2026-W49"


def _ready(request_id: str) -> bool:
    status = app.documents.status(request_id)
    if status is not None and status.status == "failed":
        raise AssertionError(f"{request_id} failed: {status.error}")
    return status is not None and status.ready


def _weekly_emails(outbox: Path) -> list[email.message.EmailMessage]:
    messages = []
    for path in sorted(outbox.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        if "weekly" in path.name:
            messages.append(parsed)
    return messages


def test_worker_writes_reports_exports_and_the_weekly_pdf_the_email_attaches(
    docs_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    seeded = seed_reports(proposals=40)
    env = {**docs_env, "WEEKLY_SUMMARY_PDF": "true", "PYTHONUNBUFFERED": "1"}
    with running_worker(
        env,
        redis_client,
        tmp_path / "worker.log",
        modules=["actors.documents", "actors.email"],
        queues=["documents", "email"],
        threads=1,
        shutdown_timeout_ms=10_000,
    ):
        report = enqueue.report(seeded.user_id, "pipeline", "pdf")
        export = enqueue.data_export(seeded.user_id, "opportunities", "xlsx", {"set_aside": ["SBA"]})
        assert report.job.actor == "generate_report" and report.job.queue == "documents"
        wait_for(lambda: _ready(report.request_id), timeout=60, what="the pipeline PDF")
        wait_for(lambda: _ready(export.request_id), timeout=60, what="the export")

        pdf = app.documents.file_path(report.request_id)
        assert pdf is not None and "Proposal 0039 for" in pdftotext(pdf)
        status = app.documents.status(report.request_id)
        assert status is not None and status.page_count == pdfinfo_pages(pdf)
        assert status.message_id == report.job.message_id
        book = load_workbook(io.BytesIO(app.documents.read_bytes(export.request_id) or b""))
        assert book["Opportunities"].max_row == 1 + 5  # the header and the five SBA notices

        enqueue.weekly_summaries(WEEK)
        outbox = Path(docs_env["EMAIL_OUTBOX_DIR"])
        wait_for(lambda: len(_weekly_emails(outbox)) == 2, timeout=60, what="two weekly emails")

    weekly_pdf = app.documents.file_path(enqueue.weekly_report_request_id(seeded.user_id, WEEK))
    assert weekly_pdf is not None and f"Weekly summary {WEEK}" in pdftotext(weekly_pdf)
    mine = next(m for m in _weekly_emails(outbox) if "zoe@example.com" in str(m["To"]))
    attachments = [part for part in mine.iter_attachments()]
    assert [part.get_filename() for part in attachments] == [weekly_pdf.name]
    assert attachments[0].get_content() == weekly_pdf.read_bytes()
    assert UNICODE_NAME in pdftotext(weekly_pdf)
