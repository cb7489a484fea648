"""Actors of the ``documents`` queue: each validates its arguments (``job_actor``) and calls one service function.

WeasyPrint is imported here, once per worker process at start (``app.documents.pdf``), not per job.
"""

from __future__ import annotations

import app.broker  # binds actors to the platform broker before any is declared
import app.documents.pdf  # noqa: F401  (WeasyPrint and its fonts loaded once per process)
from app.actor import job_actor
from app.documents import attachments, compliance, exports, reports
from app.jobs.documents import (
    BuildComplianceMatrixArgs,
    ExportDataArgs,
    GenerateReportArgs,
    ProcessAttachmentArgs,
)


@job_actor("generate_report")
def generate_report(args: GenerateReportArgs) -> None:
    reports.generate_report(
        request_id=args.request_id,
        user_id=args.user_id,
        report=args.report,
        fmt=args.format,
        week=args.week,
        bom=args.bom,
    )


@job_actor("export_data")
def export_data(args: ExportDataArgs) -> None:
    exports.export_data(
        request_id=args.request_id,
        user_id=args.user_id,
        dataset_name=args.dataset,
        fmt=args.format,
        filters=args.filters,
        bom=args.bom,
    )


@job_actor("process_attachment")
def process_attachment(args: ProcessAttachmentArgs) -> None:
    attachments.process_attachment(request_id=args.request_id, notice_id=args.notice_id, url=args.url)


@job_actor("build_compliance_matrix")
def build_compliance_matrix(args: BuildComplianceMatrixArgs) -> None:
    compliance.build_compliance_matrix(
        request_id=args.request_id, notice_id=args.notice_id, proposal_id=args.proposal_id, fmt=args.format
    )
