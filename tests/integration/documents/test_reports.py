"""generate_report: every report in every format, checked with real readers (poppler, openpyxl, csv)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

import app.documents
from app.documents import reports
from app.errors import PermanentError
from tests.integration.documents.conftest import pdffonts, pdfinfo_pages, pdftotext
from tests.integration.documents.reports_data import (
    FORMULA_TITLE,
    MARKUP_TITLE,
    NOW,
    UNICODE_NAME,
    seed_reports,
)

pytestmark = pytest.mark.integration


def _generate(
    request_id: str, user_id: int, report: str, fmt: str, **kwargs: object
) -> app.documents.DocumentStatus:
    reports.generate_report(request_id=request_id, user_id=user_id, report=report, fmt=fmt, now=NOW, **kwargs)  # type: ignore[arg-type]
    status = app.documents.status(request_id)
    assert status is not None and status.ready, status
    return status


def _generated_file(request_id: str, user_id: int, report: str, fmt: str, **kwargs: object) -> Path:
    """The file of a report generated now, ready and stored."""
    _generate(request_id, user_id, report, fmt, **kwargs)
    path = app.documents.file_path(request_id)
    assert path is not None
    return path


def test_pipeline_pdf_has_cover_tables_pages_and_embedded_fonts(docs_env: dict[str, str]) -> None:
    seeded = seed_reports(proposals=160)
    status = _generate("pipeline-pdf-1", seeded.user_id, "pipeline", "pdf")
    path = app.documents.file_path("pipeline-pdf-1")
    assert path is not None and path.read_bytes().startswith(b"%PDF")
    text = pdftotext(path)
    assert "Proposal pipeline" in text
    assert UNICODE_NAME in text
    assert "Proposals by status" in text  # the chart's title (inline SVG text)
    assert "Proposal 0159 for" in text and "Proposal 0001 for" in text
    assert "Not yours" not in text
    # 160 proposals: the table breaks across pages and its header row repeats on each.
    pages = pdfinfo_pages(path)
    assert pages == status.page_count and pages >= 4
    assert text.count("Days left") >= pages - 2
    assert f"Page {pages} of {pages}" in text
    fonts = pdffonts(path)
    assert fonts and all(font["emb"] == "yes" for font in fonts), fonts
    assert status.size_bytes == path.stat().st_size and len(status.sha256 or "") == 64
    assert status.content_type == "application/pdf" and status.progress == 100


def test_html_in_user_data_is_escaped_in_pdf(docs_env: dict[str, str]) -> None:
    seeded = seed_reports()
    path = _generated_file("opps-pdf-1", seeded.user_id, "opportunities", "pdf")
    text = " ".join(pdftotext(path).split())
    # The markup shows as text: had it been interpreted, "<b>" and the script would be gone from the text.
    # (Compared without whitespace: the title wraps inside its table cell.)
    assert "".join(MARKUP_TITLE.split()) in "".join(pdftotext(path, raw=True).split())
    assert "Proposal <i>zero</i>" not in text  # not part of this report
    assert "Saved opportunities" in text and "Matching opportunities" in text
    assert "$1,250,000.50" in text


def test_analytics_pdf_counts_and_charts(docs_env: dict[str, str]) -> None:
    seeded = seed_reports(opportunities=10)
    path = _generated_file("analytics-pdf-1", seeded.user_id, "analytics", "pdf")
    text = pdftotext(path)
    for heading in ("By NAICS code", "By agency", "By set-aside", "By week posted", "Notices by NAICS code"):
        assert heading in text
    assert "DEPT OF TESTS 0" in text and "541512" in text
    assert "Notices counted" in text and "10" in text


def test_weekly_summary_pdf_lists_the_week(docs_env: dict[str, str]) -> None:
    seeded = seed_reports()
    path = _generated_file("weekly-pdf-1", seeded.user_id, "weekly-summary", "pdf", week="2026-W49")
    text = pdftotext(path)
    assert "Weekly summary 2026-W49" in text
    assert "Saved notices due this week" in text and "Proposal pipeline" in text


def test_pipeline_xlsx_typed_cells_frozen_header_filter(docs_env: dict[str, str]) -> None:
    seeded = seed_reports(proposals=7)
    path = _generated_file("pipeline-xlsx-1", seeded.user_id, "pipeline", "xlsx")
    book = load_workbook(path)
    assert book.sheetnames == ["By status", "Proposals by due date"]
    sheet = book["Proposals by due date"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:F8"
    header = [cell.value for cell in sheet[1]]
    assert header == ["ID", "Proposal", "Status", "Due", "Days left", "Notice ID"]
    assert all(cell.font.b for cell in sheet[1])
    first = [cell for cell in sheet[2]]
    assert isinstance(first[0].value, int)
    assert isinstance(first[3].value, dt.datetime) and first[3].is_date  # a real date, not text
    assert first[3].number_format == "yyyy-mm-dd"
    assert sheet.column_dimensions["B"].width == 50


def test_opportunities_xlsx_currency_and_formula_kept_as_text(docs_env: dict[str, str]) -> None:
    seeded = seed_reports()
    path = _generated_file("opps-xlsx-1", seeded.user_id, "opportunities", "xlsx")
    sheet = load_workbook(path)["Saved opportunities"]
    rows = list(sheet.iter_rows(min_row=2))
    values = {row[0].value: row for row in rows}
    formula_row = next(row for row in rows if row[1].value == FORMULA_TITLE)
    assert formula_row[1].data_type == "s"  # text, never a formula
    value_cell = values[seeded.notice_ids[0]][7]
    assert value_cell.value == pytest.approx(1250000.50) and value_cell.number_format == '"$"#,##0.00'
    assert values[seeded.notice_ids[0]][1].value == MARKUP_TITLE
    assert isinstance(values[seeded.notice_ids[0]][6].value, dt.datetime)


def test_pipeline_csv_parses_round_trips_and_neutralises(docs_env: dict[str, str]) -> None:
    seeded = seed_reports(proposals=5)
    path = _generated_file("opps-csv-1", seeded.user_id, "opportunities", "csv", bom=True)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0][:3] == ["Notice ID", "Title", "Agency"]
    titles = [row[1] for row in rows[1:]]
    assert "'" + FORMULA_TITLE in titles and FORMULA_TITLE not in titles
    assert MARKUP_TITLE in titles
    assert Decimal(rows[1][7]) >= Decimal("1250000.50")


def test_missing_user_is_a_permanent_failure_recorded_on_the_row(docs_env: dict[str, str]) -> None:
    with pytest.raises(PermanentError):
        reports.generate_report(request_id="nouser-0001", user_id=999_999, report="pipeline", fmt="pdf")
    status = app.documents.status("nouser-0001")
    assert status is not None and status.status == "failed" and "999999" in (status.error or "")
    assert app.documents.file_path("nouser-0001") is None


def test_analytics_reads_the_aggregate_tables_once_they_are_filled(docs_env: dict[str, str]) -> None:
    from app.db.models import AnalyticsCount
    from app.db.session import session_scope

    seeded = seed_reports(opportunities=3)
    with session_scope() as session:
        session.add_all(
            [
                AnalyticsCount(dimension="naics", key="999999", notices=4321, active=4000, award_count=7,
                               award_total=Decimal("123.45")),
                AnalyticsCount(dimension="agency", key="DEPT OF AGGREGATES", notices=12, active=3, award_count=0,
                               award_total=Decimal(0)),
            ]
        )  # fmt: skip
    path = _generated_file("analytics-xlsx-1", seeded.user_id, "analytics", "xlsx")
    book = load_workbook(path)
    naics = [[cell.value for cell in row] for row in book["By NAICS code"].iter_rows(min_row=2)]
    assert naics == [["999999", 4321, 4000, 7, pytest.approx(123.45)]]
    agencies = [row[0].value for row in book["By agency"].iter_rows(min_row=2)]
    assert agencies == ["DEPT OF AGGREGATES"]  # not the counts of the three seeded notices
