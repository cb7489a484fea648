"""build_compliance_matrix on the sample solicitation (tests/fixtures/solicitation), read back with real readers.

The fixture's requirements were marked by hand (``expected_requirements.json``); the matrix built from the
notice's description and its two processed attachments (a PDF with sections B, C, L and M, a DOCX) must find
them with precision and recall of at least 0.9, in the right document, page and section.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from openpyxl import load_workbook

import app.documents
from app import enqueue
from app.db.models import Opportunity, Proposal, User
from app.db.session import session_scope
from app.documents import attachments, compliance
from app.errors import PermanentError
from tests.integration.documents.conftest import pdfinfo_pages, pdftotext
from tests.support.compliance_score import FIXTURES, marked, score
from tests.support.helpers import wait_for
from tests.support.worker import running_worker

pytestmark = pytest.mark.integration

EXPECTED = marked("expected_requirements.json")
NOTICE = "36c10b27f0042000000000000000000a"
OTHER_NOTICE = "0" * 31 + "e"
HEADERS = ["ID", "Section", "Requirement", "Source", "Page", "Type", "Owner", "Status", "Response location"]


@pytest.fixture
def docs_env(docs_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The documents environment, allowed to download from the test server on 127.0.0.1."""
    monkeypatch.setenv("ATTACHMENT_ALLOW_PRIVATE_HOSTS", "true")
    from app.settings import reset_settings

    reset_settings()
    return {**docs_env, "ATTACHMENT_ALLOW_PRIVATE_HOSTS": "true"}


@pytest.fixture
def server() -> Iterator[Any]:
    from app.testing.attachment_server import AttachmentServer, Route

    with AttachmentServer() as running:
        for name in ("solicitation.pdf", "attachment_j3_security.docx"):
            running.add(f"/files/{name}", Route.file((FIXTURES / name).read_bytes()))
        yield running


def _seed_notice(*, with_proposal: bool = False) -> int | None:
    description = (FIXTURES / "notice_description.html").read_text(encoding="utf-8")
    with session_scope() as session:
        session.add(
            Opportunity(
                notice_id=NOTICE,
                title="Enterprise Service Desk Support Services",
                solicitation_number="36C10B27R0042",
                raw={"noticeId": NOTICE, "description": description},
                payload_hash="fixture",
            )
        )
        session.add(Opportunity(notice_id=OTHER_NOTICE, title="Nothing to read", raw={}, payload_hash="x"))
        if not with_proposal:
            return None
        owner = User(email="pm@example.com", name="Dana Proposal-Manager")
        session.add(owner)
        session.flush()
        proposal = Proposal(owner_id=owner.id, notice_id=NOTICE, title="Service desk bid <draft>")
        session.add(proposal)
        session.flush()
        return proposal.id


def _process_attachments(server: Any) -> None:
    for index, name in enumerate(("solicitation.pdf", "attachment_j3_security.docx")):
        attachments.process_attachment(
            request_id=f"att-fixture-{index}", notice_id=NOTICE, url=server.url(f"/files/{name}")
        )


def test_matrix_of_the_sample_solicitation_finds_the_marked_requirements(
    docs_env: dict[str, str], server: Any
) -> None:
    # Given: the notice (its description) and its two attachments, processed
    _seed_notice()
    _process_attachments(server)

    # When
    compliance.build_compliance_matrix(request_id="cm-fixture-xlsx", notice_id=NOTICE, fmt="xlsx")

    # Then: the XLSX, read back with openpyxl
    status = app.documents.status("cm-fixture-xlsx")
    path = app.documents.file_path("cm-fixture-xlsx")
    assert status is not None and status.ready and path is not None
    workbook = load_workbook(path)
    sheet = workbook["Compliance matrix"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:I{len(rows)}"
    assert all(cell.font.bold for cell in sheet[1])
    found = [
        {"id": r[0], "section": r[1], "text": r[2], "source": r[3], "page": r[4], "type": r[5]}
        for r in rows[1:]
    ]
    assert status.row_count == len(found)
    assert [f["id"] for f in found] == [f"REQ-{n:03d}" for n in range(1, len(found) + 1)]
    assert all(isinstance(f["page"], int) for f in found if f["source"] != compliance.DESCRIPTION_SOURCE)
    result = score(found, EXPECTED)
    print("\n" + result.report("compliance matrix of the sample solicitation"))
    assert result.precision >= 0.9 and result.recall >= 0.9, result.problems
    assert result.location_accuracy >= 0.9, result.problems
    # The B.1 sentence the description repeats is listed once, where the solicitation says it.
    furnish = [f for f in found if "shall furnish all personnel" in f["text"]]
    assert len(furnish) == 1 and (furnish[0]["source"], furnish[0]["section"]) == ("solicitation.pdf", "B.1")
    types = {f["section"]: f["type"] for f in found}
    assert (types["L.3.2"], types["M.2"], types["C.4.1"]) == (
        "Proposal submission",
        "Evaluation",
        "Performance",
    )


def test_pdf_matrix_is_landscape_with_every_requirement(docs_env: dict[str, str], server: Any) -> None:
    _seed_notice()
    _process_attachments(server)

    matrix = compliance.build_compliance_matrix(request_id="cm-fixture-pdf", notice_id=NOTICE, fmt="pdf")

    assert matrix is not None
    status = app.documents.status("cm-fixture-pdf")
    path = app.documents.file_path("cm-fixture-pdf")
    assert status is not None and status.ready and path is not None
    assert status.content_type == "application/pdf" and pdfinfo_pages(path) == status.page_count >= 2
    text = " ".join(pdftotext(path).split())
    # Content-stream order keeps each wrapped table cell's lines together (the layout mode interleaves columns).
    raw = subprocess.run(
        ["pdftotext", "-raw", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    cells = " ".join(raw.split()).replace(
        "- ", "-"
    )  # a cell wraps after a hyphen: "Government-" / "furnished"
    size = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True).stdout
    assert re.search(r"Page size:\s+841\.89 x 595\.2\d* pts", size), size  # A4 landscape
    assert "Enterprise Service Desk Support Services" in text and "36C10B27R0042" in text
    assert f"{len(matrix.requirements)} requirements from solicitation.pdf" in text
    last = matrix.requirements[-1]
    assert last.id in text and "REQ-001" in text
    assert all(requirement.text in cells for requirement in matrix.requirements)
    assert f"Page {status.page_count} of {status.page_count}" in text


def test_proposal_matrix_names_its_owner_and_bad_requests_fail_permanently(
    docs_env: dict[str, str], server: Any
) -> None:
    proposal_id = _seed_notice(with_proposal=True)
    assert proposal_id is not None
    _process_attachments(server)

    # A proposal's matrix: its notice's requirements, its owner on every row; the title is escaped in the PDF.
    matrix = compliance.build_compliance_matrix(
        request_id="cm-proposal-1", proposal_id=proposal_id, fmt="xlsx"
    )
    assert (
        matrix is not None
        and matrix.notice_id == NOTICE
        and matrix.proposal_title == "Service desk bid <draft>"
    )
    path = app.documents.file_path("cm-proposal-1")
    assert path is not None
    rows = list(load_workbook(path)["Compliance matrix"].iter_rows(min_row=2, values_only=True))
    assert (
        rows
        and {row[6] for row in rows} == {"Dana Proposal-Manager"}
        and {row[7] for row in rows} == {"Open"}
    )

    with pytest.raises(PermanentError, match="proposal 999999 does not exist"):
        compliance.build_compliance_matrix(request_id="cm-missing-1", proposal_id=999999)
    with pytest.raises(PermanentError, match="no description and no processed attachment"):
        compliance.build_compliance_matrix(request_id="cm-empty-01", notice_id=OTHER_NOTICE)
    status = app.documents.status("cm-empty-01")
    assert status is not None and status.status == "failed"


def test_worker_processes_attachments_and_builds_the_matrix_from_the_enqueue_helpers(
    docs_env: dict[str, str], server: Any, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given: a documents worker, and the notice
    _seed_notice()
    with running_worker(
        docs_env,
        redis_client,
        tmp_path / "worker.log",
        modules=["actors.documents"],
        queues=["documents"],
        threads=1,
    ):
        # When: the sync enqueues the notice's attachments in one round trip, then the web app the matrix
        prepared = [
            enqueue.attachment_job(NOTICE, server.url(f"/files/{name}"))
            for name in ("solicitation.pdf", "attachment_j3_security.docx")
        ]
        refs = enqueue.many([job for _, job in prepared])
        request_ids = [request_id for request_id, _ in prepared]
        assert [ref.actor for ref in refs] == ["process_attachment"] * 2
        again = enqueue.attachment(NOTICE, server.url("/files/solicitation.pdf"))
        assert again.request_id == request_ids[0]  # the same attachment is the same request

        def ready(request_id: str) -> bool:
            status = app.documents.status(request_id)
            return status is not None and status.ready

        for request_id in request_ids:
            wait_for(lambda r=request_id: ready(r), timeout=30, what=f"attachment {request_id}")
        matrix = enqueue.compliance_matrix(NOTICE, format="xlsx")
        wait_for(lambda: ready(matrix.request_id), timeout=30, what="compliance matrix")

    # Then
    assert matrix.job.actor == "build_compliance_matrix" and matrix.job.queue == "documents"
    assert len(attachments.attachments_of(NOTICE)) == 2
    status = app.documents.status(matrix.request_id)
    assert status is not None and status.row_count is not None and status.row_count >= len(EXPECTED) * 0.9
