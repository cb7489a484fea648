"""First sketch of the ``documents`` queue's argument schemas; not in the catalogue yet.

No actor of the ``documents`` queue exists, so these specs are not registered in ``app.jobs.SPECS``:
the documents issue refines them and registers them together with its actors (until then an enqueue
of one of them raises ``InvalidJob`` at the call site instead of being dead-lettered by a worker).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt

from app.constants import DOCUMENTS_QUEUE
from app.jobs.spec import JobArgs, JobSpec

#: A request id names the output file and the ``documents`` row; re-running it overwrites nothing else.
RequestId = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")


class GenerateReportArgs(JobArgs):
    request_id: str = RequestId
    user_id: PositiveInt
    report: Literal["weekly-summary", "pipeline", "opportunities"]
    format: Literal["pdf", "xlsx", "csv"] = "pdf"
    params: dict[str, Any] = Field(default_factory=dict)


class ExportDataArgs(JobArgs):
    request_id: str = RequestId
    user_id: PositiveInt
    dataset: Literal["opportunities", "saved_opportunities", "proposals"]
    format: Literal["csv", "xlsx"] = "csv"


class ProcessAttachmentArgs(JobArgs):
    request_id: str = RequestId
    notice_id: str = Field(pattern=r"^[0-9a-fA-F]{32}$")
    url: str = Field(pattern=r"^https?://", max_length=2000)


class BuildComplianceMatrixArgs(JobArgs):
    request_id: str = RequestId
    proposal_id: PositiveInt


DOCUMENT_JOBS = (
    JobSpec("generate_report", DOCUMENTS_QUEUE, GenerateReportArgs, time_limit_ms=5 * 60_000),
    JobSpec("export_data", DOCUMENTS_QUEUE, ExportDataArgs, time_limit_ms=10 * 60_000),
    JobSpec("process_attachment", DOCUMENTS_QUEUE, ProcessAttachmentArgs, time_limit_ms=5 * 60_000),
    JobSpec("build_compliance_matrix", DOCUMENTS_QUEUE, BuildComplianceMatrixArgs, time_limit_ms=5 * 60_000),
)
