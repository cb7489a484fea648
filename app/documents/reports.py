"""``generate_report``: one report (pipeline, opportunities, analytics, weekly-summary) as PDF, XLSX or CSV.

The report is read into a :class:`~app.documents.report_model.Report` first and written in one go: reports
are bounded (a few thousand rows at most, see ``report_data.MAX_ROWS``); unbounded data goes through
:mod:`app.documents.exports`, which streams.
"""

from __future__ import annotations

import datetime as dt
import logging

from app.documents import report_data, storage, xlsx
from app.documents.csvout import CsvWriter
from app.documents.report_model import Report
from app.documents.storage import DocumentOutput

logger = logging.getLogger(__name__)

#: The template every report renders with (sections, cover, running header and footer).
REPORT_TEMPLATE = "report.html"


def generate_report(
    *,
    request_id: str,
    user_id: int,
    report: str,
    fmt: str,
    week: str | None = None,
    bom: bool = False,
    now: dt.datetime | None = None,
) -> None:
    """Build ``report`` for ``user_id`` into the file of ``request_id``; a request already done is not redone."""
    if storage.completed(request_id) is not None:
        logger.info("report already written", extra={"request_id": request_id})
        return
    params = {"report": report, "week": week, "bom": bom}
    with storage.produce(request_id, kind="report", fmt=fmt, user_id=user_id, params=params) as out:
        data = report_data.build(report, user_id=user_id, week=week, now=now)
        out.progress(40)
        write(data, fmt, out, bom=bom)
        out.row_count = sum(len(section.rows) for section in data.sections)


def write(report: Report, fmt: str, out: DocumentOutput, *, bom: bool = False) -> None:
    """Write ``report`` to ``out.temp_path`` in ``fmt``."""
    if fmt == "pdf":
        out.page_count = render_pdf(report, out)
    elif fmt == "xlsx":
        write_xlsx(report, out)
    elif fmt == "csv":
        write_csv(report, out, bom=bom)
    else:
        raise ValueError(f"unknown report format {fmt!r}")  # the argument schema allows none other


def render_pdf(report: Report, out: DocumentOutput) -> int:
    from app.documents import pdf

    return pdf.render_pdf(REPORT_TEMPLATE, {"report": report}, out.temp_path)


def write_xlsx(report: Report, out: DocumentOutput) -> None:
    workbook = xlsx.new_workbook()
    for section in report.sections:
        sheet = xlsx.SheetWriter(workbook, section.title, [c.column for c in section.columns])
        sheet.extend(section.rows)
        sheet.close()
    xlsx.save(workbook, out.temp_path)


def write_csv(report: Report, out: DocumentOutput, *, bom: bool) -> None:
    """The primary section only: a CSV file is one table (the XLSX has every section)."""
    section = report.primary
    with out.temp_path.open("w", encoding="utf-8", newline="") as stream:
        writer = CsvWriter(stream, [c.header for c in section.columns], bom=bom)
        writer.extend(section.rows)
