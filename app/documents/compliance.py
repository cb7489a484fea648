"""``build_compliance_matrix``: the requirements of a notice (and its processed attachments) as XLSX or PDF.

The text comes from the notice's description (the ``description`` of its stored SAM.gov payload, HTML
stripped) and from every attachment ``process_attachment`` linked to it (their text per page, stored by
sha256); :mod:`app.documents.compliance_text` finds, locates, de-duplicates and numbers the requirements.
Attachments come first, in the order they were linked, then the description: a sentence the description
repeats from the solicitation keeps the solicitation's section and page.

Given a proposal, the matrix is for the proposal's notice, titled with the proposal and with its owner in
the ``Owner`` column (each row can then be reassigned in the spreadsheet). The matrix is one file per
request, written through :func:`app.documents.storage.produce` (one ``documents`` row, temporary name
renamed into place): ``xlsx`` (columns ID, Section, Requirement, Source, Page, Type, Owner, Status, Response
location; bold frozen header, autofilter) or ``pdf`` (``templates/documents/compliance.html``, landscape).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from dataclasses import dataclass
from typing import Any

from app.db.models import Opportunity, Proposal
from app.db.session import session_scope
from app.documents import attachments, storage, xlsx
from app.documents.compliance_text import Requirement, Source, requirements
from app.documents.storage import DocumentOutput
from app.errors import PermanentError

logger = logging.getLogger(__name__)

KIND = "compliance"
TEMPLATE = "compliance.html"
#: The source name of the notice's own description text.
DESCRIPTION_SOURCE = "Notice description"
#: What every row's Status starts as (the team updates it in the spreadsheet).
INITIAL_STATUS = "Open"

COLUMNS = (
    xlsx.Column("ID", "text", 10),
    xlsx.Column("Section", "text", 12),
    xlsx.Column("Requirement", "text", 90),
    xlsx.Column("Source", "text", 30),
    xlsx.Column("Page", "integer", 7),
    xlsx.Column("Type", "text", 20),
    xlsx.Column("Owner", "text", 20),
    xlsx.Column("Status", "text", 12),
    xlsx.Column("Response location", "text", 24),
)

_BLOCK_END = re.compile(r"(?i)<\s*(?:br|/p|/div|/li|/h[1-6]|/tr)\b[^>]*>")
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Matrix:
    """What a matrix shows: the notice, the proposal it is for (if any) and the numbered requirements."""

    notice_id: str
    title: str
    solicitation_number: str | None
    proposal_title: str | None
    owner: str
    sources: tuple[str, ...]
    requirements: tuple[Requirement, ...]
    generated_at: dt.datetime

    def rows(self) -> list[tuple[Any, ...]]:
        return [
            (r.id, r.section, r.text, r.source, r.page, r.type, self.owner, INITIAL_STATUS, "")
            for r in self.requirements
        ]


def build_compliance_matrix(
    *, request_id: str, notice_id: str | None = None, proposal_id: int | None = None, fmt: str = "xlsx"
) -> Matrix | None:
    """Write the matrix of ``notice_id`` (or of ``proposal_id``'s notice) into the file of ``request_id``.

    A request already done is not redone (returns None). :class:`PermanentError` when the proposal or the
    notice does not exist, or the notice has neither a description nor a processed attachment.
    """
    if storage.completed(request_id) is not None:
        logger.info("compliance matrix already written", extra={"request_id": request_id})
        return None
    params = {"notice_id": notice_id, "proposal_id": proposal_id}
    with storage.produce(request_id, kind=KIND, fmt=fmt, params=params) as out:
        matrix = collect(notice_id=notice_id, proposal_id=proposal_id)
        out.progress(50)
        if fmt == "xlsx":
            write_xlsx(matrix, out)
        elif fmt == "pdf":
            out.page_count = write_pdf(matrix, out)
        else:
            raise PermanentError(f"unknown compliance matrix format {fmt!r}")
        out.row_count = len(matrix.requirements)
    logger.info(
        "compliance matrix written",
        extra={
            "request_id": request_id,
            "notice_id": matrix.notice_id,
            "requirements": len(matrix.requirements),
        },
    )
    return matrix


def collect(*, notice_id: str | None, proposal_id: int | None) -> Matrix:
    """Read the notice (and proposal) and extract its requirements; no file is written."""
    with session_scope() as session:
        proposal = None
        if proposal_id is not None:
            proposal = session.get(Proposal, proposal_id)
            if proposal is None:
                raise PermanentError(f"proposal {proposal_id} does not exist")
            if proposal.notice_id is None:
                raise PermanentError(f"proposal {proposal_id} is not for a notice")
            if notice_id is not None and notice_id != proposal.notice_id:
                raise PermanentError(
                    f"proposal {proposal_id} is for notice {proposal.notice_id}, not {notice_id}"
                )
            notice_id = proposal.notice_id
        if notice_id is None:
            raise PermanentError("a compliance matrix needs a notice_id or a proposal_id")
        notice = session.get(Opportunity, notice_id)
        title = notice.title if notice is not None else ""
        number = notice.solicitation_number if notice is not None else None
        description = description_text(notice.raw) if notice is not None else ""
        proposal_title = proposal.title if proposal is not None else None
        owner = (proposal.owner.name or proposal.owner.email or "") if proposal is not None else ""
    sources = [Source(record.file_name, record.pages()) for record in attachments.attachments_of(notice_id)]
    if description:
        sources.append(Source(DESCRIPTION_SOURCE, [description], paged=False))
    if not sources:
        raise PermanentError(
            f"notice {notice_id} has no description and no processed attachment to read requirements from"
        )
    return Matrix(
        notice_id=notice_id,
        title=title or f"Notice {notice_id}",
        solicitation_number=number,
        proposal_title=proposal_title,
        owner=owner,
        sources=tuple(source.name for source in sources),
        requirements=tuple(requirements(sources)),
        generated_at=dt.datetime.now(dt.UTC),
    )


def description_text(raw: dict[str, Any]) -> str:
    """The notice's description as plain text; empty when the payload has none (or only its API link)."""
    value = raw.get("description")
    if not isinstance(value, str) or re.match(r"^\s*https?://\S+\s*$", value):
        return ""
    return html.unescape(_TAG.sub("", _BLOCK_END.sub("\n", value))).strip()


def write_xlsx(matrix: Matrix, out: DocumentOutput) -> None:
    workbook = xlsx.new_workbook()
    sheet = xlsx.SheetWriter(workbook, "Compliance matrix", COLUMNS)
    sheet.extend(matrix.rows())
    sheet.close()
    xlsx.save(workbook, out.temp_path)


def write_pdf(matrix: Matrix, out: DocumentOutput) -> int:
    from app.documents import pdf

    return pdf.render_pdf(TEMPLATE, {"matrix": matrix, "columns": COLUMNS}, out.temp_path)
