"""The documents jobs' arguments are checked at the call site, and the helpers name the request and its file."""

from __future__ import annotations

import csv
import io

import pytest

from app import enqueue
from app.documents.csvout import CsvWriter, neutralise
from app.errors import InvalidJob


def test_report_job_carries_a_new_request_id_and_its_idempotency_key() -> None:
    request_id, prepared = enqueue.report_job(42, "analytics", "xlsx")
    message = prepared.message
    assert (message.queue_name, message.actor_name) == ("documents", "generate_report")
    assert message.kwargs["request_id"] == request_id and len(request_id) == 32
    assert message.kwargs["report"] == "analytics" and message.kwargs["format"] == "xlsx"
    assert message.options["idempotency_key"] == f"document:{request_id}"
    again, _ = enqueue.report_job(42, "analytics", "xlsx")
    assert again != request_id


@pytest.mark.parametrize(
    ("actor", "kwargs", "problem"),
    [
        ("generate_report", {"report": "everything"}, "report"),
        ("generate_report", {"report": "pipeline", "format": "docx"}, "format"),
        ("generate_report", {"report": "weekly-summary", "week": "2026-48"}, "week"),
        ("export_data", {"dataset": "users"}, "dataset"),
        ("export_data", {"dataset": "proposals", "format": "pdf"}, "format"),
        ("export_data", {"dataset": "opportunities", "filters": {"colour": "red"}}, "filters.colour"),
        ("export_data", {"dataset": "opportunities", "filters": {"naics": ["54 1512"]}}, "filters.naics"),
    ],
)
def test_bad_arguments_are_refused_at_the_call_site(
    actor: str, kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidJob, match=problem):
        enqueue.job(actor, request_id="req-00000001", user_id=42, **kwargs)


def test_a_request_id_that_could_name_a_path_is_refused() -> None:
    with pytest.raises(InvalidJob, match="request_id"):
        enqueue.job("generate_report", request_id="../../etc/x", user_id=42, report="pipeline")


def test_weekly_pdf_and_email_travel_together_with_the_pdf_path() -> None:
    pdf, email = enqueue.weekly_summary_with_report_jobs(42, "2026-W49")
    assert pdf.message.actor_name == "generate_report"
    assert pdf.message.kwargs["request_id"] == "weekly-42-2026-W49"
    assert pdf.message.kwargs["week"] == "2026-W49"
    assert email.message.actor_name == "send_weekly_summary"
    assert email.message.kwargs["attachments"] == ["reports/weekly-42-2026-W49.pdf"]


def test_csv_writer_neutralises_formulas_and_keeps_numbers() -> None:
    stream = io.StringIO(newline="")
    writer = CsvWriter(stream, ["text", "number"])
    writer.append(["=cmd|' /C calc'!A0", -12.5])
    writer.append(['say "hi", twice\nnext line', None])
    writer.append(["@SUM(A1)", 3])
    rows = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert rows == [
        ["text", "number"],
        ["'=cmd|' /C calc'!A0", "-12.5"],
        ['say "hi", twice\nnext line', ""],
        ["'@SUM(A1)", "3"],
    ]
    assert stream.getvalue().count("\r\n") == 4
    assert neutralise("+1") == "'+1" and neutralise("plain") == "plain"
