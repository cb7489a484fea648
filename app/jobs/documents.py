"""Argument schemas of the ``documents`` queue's actors.

Each group of specs is registered in ``app.jobs.SPECS`` together with its actors: ``REPORT_JOBS``
(``generate_report``, ``export_data``) and ``ATTACHMENT_JOBS`` (``process_attachment``,
``build_compliance_matrix``). Every job carries the request id that names its ``documents`` row and its
file; the enqueue helpers make one up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, model_validator

from app.constants import DOCUMENTS_QUEUE
from app.jobs.spec import JobArgs, JobSpec

#: A request id names the output file and the ``documents`` row; re-running it overwrites nothing else.
RequestId = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")


ReportName = Literal["pipeline", "opportunities", "analytics", "weekly-summary"]
ReportFormat = Literal["pdf", "xlsx", "csv"]
Dataset = Literal["opportunities", "saved_opportunities", "proposals", "entities"]
ExportFormat = Literal["csv", "xlsx", "jsonl"]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


class GenerateReportArgs(JobArgs):
    request_id: str = RequestId
    user_id: PositiveInt
    report: ReportName
    format: ReportFormat = "pdf"
    #: ``weekly-summary``: the ISO week it covers (default: the current one when the job runs).
    week: Annotated[str, Field(pattern=r"^\d{4}-W\d{2}$")] | None = None
    #: Prefix UTF-8 CSV with a byte-order mark so that Excel reads it as UTF-8.
    bom: bool = False


class ExportFilters(JobArgs):
    """What an export may be narrowed by; a filter that does not apply to the dataset is ignored."""

    posted_from: dt.date | None = None
    posted_to: dt.date | None = None
    naics: tuple[Code, ...] = ()
    set_aside: tuple[Code, ...] = ()
    #: Case-insensitive substring of the agency path.
    agency: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    active: bool | None = None
    #: Proposal statuses.
    status: tuple[Code, ...] = ()


class ExportDataArgs(JobArgs):
    request_id: str = RequestId
    user_id: PositiveInt
    dataset: Dataset
    format: ExportFormat = "csv"
    filters: ExportFilters = Field(default_factory=ExportFilters)
    bom: bool = False


class ProcessAttachmentArgs(JobArgs):
    request_id: str = RequestId
    notice_id: str = Field(pattern=r"^[0-9a-fA-F]{32}$")
    url: str = Field(pattern=r"^https?://", max_length=2000)


class BuildComplianceMatrixArgs(JobArgs):
    """The matrix of a notice, or of a proposal's notice (titled with the proposal, its owner in each row)."""

    request_id: str = RequestId
    notice_id: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$")] | None = None
    proposal_id: PositiveInt | None = None
    format: Literal["xlsx", "pdf"] = "xlsx"

    @model_validator(mode="after")
    def _names_a_notice(self) -> BuildComplianceMatrixArgs:
        if self.notice_id is None and self.proposal_id is None:
            raise ValueError("give notice_id or proposal_id")
        return self


def attachment_request_id(notice_id: str, url: str) -> str:
    """``att-`` + a digest of (notice, URL): the same attachment of the same notice is one request, so a sync
    that enqueues a notice's attachments again after each update neither downloads nor stores them twice."""
    digest = hashlib.sha256(f"{notice_id.lower()}\n{url}".encode()).hexdigest()
    return f"att-{digest[:40]}"


def new_request_id() -> str:
    """A fresh request id (32 hex characters)."""
    return uuid.uuid4().hex


def document_key(request_id: str) -> str:
    """``document:<request id>``: one finished job per request id (the Redis-side duplicate filter)."""
    return f"document:{request_id}"


#: Registered in the catalogue with ``actors/documents.py``'s ``generate_report`` and ``export_data``.
REPORT_JOBS = (
    JobSpec("generate_report", DOCUMENTS_QUEUE, GenerateReportArgs, time_limit_ms=5 * 60_000),
    JobSpec("export_data", DOCUMENTS_QUEUE, ExportDataArgs, time_limit_ms=15 * 60_000),
)

#: Registered with ``process_attachment`` and ``build_compliance_matrix``. An attachment's limit covers the
#: longest download (ATTACHMENT_DOWNLOAD_TIMEOUT_S, 5 min by default) plus reading a large PDF.
ATTACHMENT_JOBS = (
    JobSpec("process_attachment", DOCUMENTS_QUEUE, ProcessAttachmentArgs, time_limit_ms=10 * 60_000),
    JobSpec("build_compliance_matrix", DOCUMENTS_QUEUE, BuildComplianceMatrixArgs, time_limit_ms=5 * 60_000),
)
