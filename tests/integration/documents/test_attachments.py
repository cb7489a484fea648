"""process_attachment against a real misbehaving HTTP server (app.testing.attachment_server) and PostgreSQL.

Every case of the issue: redirects, a wrong Content-Type, an oversized body (announced or not), a truncated
body, a slow server (before the answer and between chunks), a path-traversal file name; plus the sha256
dedupe across notices, corrupt and unsupported files, and the retry classification of 5xx/4xx/429.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

import app.documents
from app.db.models import Attachment, AttachmentNotice
from app.db.session import session_scope
from app.documents import attachments
from app.documents.download import safe_file_name
from app.documents.extract import DOCX, PDF
from app.errors import PermanentError, RateLimited, RetryableError
from app.settings import reset_settings
from app.testing.attachment_server import AttachmentServer, Route

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "solicitation"
SOLICITATION = (FIXTURES / "solicitation.pdf").read_bytes()
SECURITY_DOCX = (FIXTURES / "attachment_j3_security.docx").read_bytes()
NOTICE_A = "a" * 32
NOTICE_B = "b" * 32
#: Small enough for the oversized cases to be quick, large enough for the fixture files.
CAP = 200_000


@pytest.fixture
def env(docs_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in {
        "ATTACHMENT_MAX_BYTES": str(CAP),
        "ATTACHMENT_CONNECT_TIMEOUT_S": "2",
        # Generous for a loaded CI machine: only the slow-server test waits for it.
        "ATTACHMENT_READ_TIMEOUT_S": "2",
        "ATTACHMENT_DOWNLOAD_TIMEOUT_S": "3",
        # The test server listens on 127.0.0.1; production refuses such addresses (see the last test).
        "ATTACHMENT_ALLOW_PRIVATE_HOSTS": "true",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    yield docs_env
    reset_settings()


@pytest.fixture
def server() -> Iterator[AttachmentServer]:
    with AttachmentServer() as running:
        yield running


def _storage(env: dict[str, str]) -> Path:
    return Path(env["STORAGE_DIR"])


def _partials(env: dict[str, str]) -> list[Path]:
    partial = _storage(env) / ".partial"
    return list(partial.iterdir()) if partial.is_dir() else []


def _counted(outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "worker_attachments_processed_total", {"queue": "documents", "outcome": outcome}
    )
    return sample or 0.0


def _rows() -> tuple[int, int]:
    with session_scope() as session:
        files = session.scalar(select(func.count()).select_from(Attachment)) or 0
        links = session.scalar(select(func.count()).select_from(AttachmentNotice)) or 0
    return files, links


def test_pdf_behind_redirects_with_a_wrong_content_type_is_identified_and_read(
    env: dict[str, str], server: AttachmentServer
) -> None:
    # Given: a PDF served as text/html, reached through two redirects
    server.add("/files/rfp", Route.file(SOLICITATION, content_type="text/html; charset=utf-8"))
    server.add("/r2", Route.redirect("/files/rfp", status=301))
    url = server.add("/r1", Route.redirect(server.url("/r2"), status=302))

    # When
    record = attachments.process_attachment(request_id="att-redirects", notice_id=NOTICE_A, url=url)

    # Then: typed from its bytes, text per page, and the request's file is the PDF
    assert record.content_type == PDF and record.status == attachments.PROCESSED
    assert record.page_count == 5 and record.size_bytes == len(SOLICITATION)
    pages = record.pages()
    assert len(pages) == 5 and "SECTION L" in pages[3] and "SECTION M" in pages[4]
    assert record.file_name == "rfp.pdf"  # the URL's name, given the extension of what it really is
    assert [server.hits(p) for p in ("/r1", "/r2", "/files/rfp")] == [1, 1, 1]
    status = app.documents.status("att-redirects")
    assert status is not None and status.ready and status.progress == 100
    assert status.content_type == PDF and status.page_count == 5 and status.sha256 == record.sha256
    path = app.documents.file_path("att-redirects")
    assert path is not None and path.read_bytes() == SOLICITATION
    assert _partials(env) == []


def test_path_traversal_file_names_are_made_safe(env: dict[str, str], server: AttachmentServer) -> None:
    # Given: a DOCX whose Content-Disposition tries to climb out of the storage directory
    url = server.add("/download", Route.file(SECURITY_DOCX, filename="../../../../etc/cron.d/evil.docx"))
    encoded = server.add(
        "/encoded",
        Route.file(SOLICITATION, disposition="attachment; filename*=UTF-8''..%2F..%2F%2Eprofile.pdf"),
    )

    # When
    docx = attachments.process_attachment(request_id="att-traversal-1", notice_id=NOTICE_A, url=url)
    pdf = attachments.process_attachment(request_id="att-traversal-2", notice_id=NOTICE_B, url=encoded)

    # Then: the names are their last component, cleaned; every file stayed under STORAGE_DIR
    assert docx.content_type == DOCX and docx.file_name == "evil.docx"
    assert pdf.file_name == "profile.pdf"
    root = _storage(env).resolve()
    # Names from the server are kept in the database, never used as paths.
    assert [p for p in root.parent.rglob("*") if "evil" in p.name or "profile" in p.name] == []
    assert not (root.parent / "etc").exists()
    assert all(p.resolve().is_relative_to(root) for p in root.rglob("*"))
    # The sanitiser on its own, for the shapes the server did not try.
    assert safe_file_name("..\\..\\windows\\system32\\boot.ini") == "boot.ini"
    assert safe_file_name("../..") == "attachment"
    assert safe_file_name("") == "attachment"
    assert safe_file_name("a\x00b/../../c d?.pdf") == "c d_.pdf"
    assert len(safe_file_name("x" * 400 + ".pdf")) <= 150 and safe_file_name("x" * 400 + ".pdf").endswith(
        ".pdf"
    )


def test_the_same_file_for_two_notices_is_processed_and_stored_once(
    env: dict[str, str], server: AttachmentServer
) -> None:
    # Given: the same bytes under two URLs of two notices
    first = server.add("/a/sow.pdf", Route.file(SOLICITATION))
    second = server.add(
        "/b/copy-of-sow.pdf", Route.file(SOLICITATION, content_type="application/octet-stream")
    )

    before = {outcome: _counted(outcome) for outcome in ("processed", "deduplicated")}

    # When
    one = attachments.process_attachment(request_id="att-dedupe-1", notice_id=NOTICE_A, url=first)
    two = attachments.process_attachment(request_id="att-dedupe-2", notice_id=NOTICE_B, url=second)

    # Then: one attachment row linked to both notices, one blob, both requests ready
    assert one.id == two.id and one.sha256 == two.sha256
    assert _rows() == (1, 2)
    assert attachments.notices_of(one.sha256) == [NOTICE_A, NOTICE_B]
    blobs = list((_storage(env) / "attachments" / "blobs").rglob("*.pdf"))
    assert len(blobs) == 1
    path_one, path_two = app.documents.file_path("att-dedupe-1"), app.documents.file_path("att-dedupe-2")
    assert path_one is not None and path_two is not None
    # The requests' files and the blob are one file on disk (hard links), not three copies.
    assert os.stat(path_one).st_ino == os.stat(path_two).st_ino == os.stat(blobs[0]).st_ino
    assert [a.file_name for a in attachments.attachments_of(NOTICE_B)] == ["copy-of-sow.pdf"]
    assert {outcome: _counted(outcome) - before[outcome] for outcome in before} == {
        "processed": 1,
        "deduplicated": 1,
    }

    # And: the same request again (a redelivered message) downloads nothing
    again = attachments.process_attachment(request_id="att-dedupe-2", notice_id=NOTICE_B, url=second)
    assert again.id == one.id and server.hits("/b/copy-of-sow.pdf") == 1
    assert _rows() == (1, 2)


def test_corrupt_pdf_is_a_permanent_failure_recorded_once(
    env: dict[str, str], server: AttachmentServer
) -> None:
    broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a pdf body\n" * 20
    url = server.add("/broken.pdf", Route.file(broken, content_type="application/pdf"))

    with pytest.raises(PermanentError, match="corrupt attachment: the PDF"):
        attachments.process_attachment(request_id="att-corrupt-1", notice_id=NOTICE_A, url=url)

    status = app.documents.status("att-corrupt-1")
    assert status is not None and status.status == "failed" and "corrupt" in (status.error or "")
    assert app.documents.file_path("att-corrupt-1") is None and _partials(env) == []
    with session_scope() as session:
        row = session.scalars(select(Attachment)).one()
        assert row.status == "failed" and row.path is None and "corrupt" in (row.error or "")
    # The same bytes for another notice fail at once with the recorded reason.
    with pytest.raises(PermanentError, match="corrupt attachment"):
        attachments.process_attachment(request_id="att-corrupt-2", notice_id=NOTICE_B, url=url)
    assert _rows() == (1, 2)
    assert attachments.attachments_of(NOTICE_A) == []


def test_unsupported_files_are_permanent_with_the_reason(
    env: dict[str, str], server: AttachmentServer
) -> None:
    cases = {
        "PNG image": b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
        "HTML page": b"<!DOCTYPE html><html><body>Please log in</body></html>",
        "legacy Office": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 200,
        "ZIP archive": SECURITY_DOCX.replace(b"word/document.xml", b"word/documenX.xml"),
    }
    for number, (reason, body) in enumerate(cases.items()):
        # Every one served as a PDF: the bytes decide.
        url = server.add(f"/file-{number}.pdf", Route.file(body, content_type="application/pdf"))
        request_id = f"att-unsupported-{number}"
        with pytest.raises(PermanentError, match=reason):
            attachments.process_attachment(request_id=request_id, notice_id=NOTICE_A, url=url)
        status = app.documents.status(request_id)
        assert status is not None and status.status == "failed" and reason in (status.error or "")
    assert attachments.attachments_of(NOTICE_A) == []


def test_oversized_bodies_are_cut_off_at_the_cap(env: dict[str, str], server: AttachmentServer) -> None:
    # Without a Content-Length: streamed until the cap, then refused.
    endless = server.add("/endless.pdf", Route.endless(CAP * 50))
    with pytest.raises(PermanentError, match=f"over the {CAP}-byte cap while streaming"):
        attachments.process_attachment(request_id="att-endless", notice_id=NOTICE_A, url=endless)
    # With an honest Content-Length over the cap: refused before the body.
    announced = server.add("/announced.pdf", Route.endless(CAP * 2, declared=True))
    with pytest.raises(PermanentError, match="Content-Length"):
        attachments.process_attachment(request_id="att-announced", notice_id=NOTICE_A, url=announced)
    for request_id in ("att-endless", "att-announced"):
        status = app.documents.status(request_id)
        assert status is not None and status.status == "failed" and "too large" in (status.error or "")
    assert _partials(env) == [] and _rows() == (0, 0)


def test_truncated_body_is_retried(env: dict[str, str], server: AttachmentServer) -> None:
    url = server.add("/cut.pdf", Route.truncated(SOLICITATION[:5000], declared_length=len(SOLICITATION)))
    with pytest.raises(RetryableError, match="truncated") as caught:
        attachments.process_attachment(request_id="att-truncated", notice_id=NOTICE_A, url=url)
    assert not isinstance(caught.value, PermanentError)
    status = app.documents.status("att-truncated")
    assert status is not None and status.status == "retrying" and status.finished_at is None
    assert _partials(env) == [] and _rows() == (0, 0)

    # The next attempt, against a server that sends it all, succeeds on the same row.
    server.add("/cut.pdf", Route.file(SOLICITATION))
    record = attachments.process_attachment(request_id="att-truncated", notice_id=NOTICE_A, url=url)
    status = app.documents.status("att-truncated")
    assert record.page_count == 5 and status is not None and status.ready and status.attempts == 2


def test_slow_servers_time_out_and_are_retried(
    env: dict[str, str], server: AttachmentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTACHMENT_DOWNLOAD_TIMEOUT_S", "1")
    reset_settings()
    # Silent for longer than the read timeout (2 s) before answering.
    silent = server.add("/silent.pdf", Route.slow(SOLICITATION, delay_s=30))
    with pytest.raises(RetryableError, match="timed out"):
        attachments.process_attachment(request_id="att-silent", notice_id=NOTICE_A, url=silent)
    # Each chunk within the read timeout, the whole past the download timeout (1 s).
    trickle = server.add("/trickle.pdf", Route.slow(SOLICITATION, chunk_delay_s=0.1, chunk_size=1000))
    with pytest.raises(RetryableError, match="took over 1 s"):
        attachments.process_attachment(request_id="att-trickle", notice_id=NOTICE_A, url=trickle)
    for request_id in ("att-silent", "att-trickle"):
        status = app.documents.status(request_id)
        assert status is not None and status.status == "retrying"
    assert _partials(env) == []


def test_server_errors_retry_and_client_errors_do_not(env: dict[str, str], server: AttachmentServer) -> None:
    unavailable = server.add("/503", Route.error(503))
    with pytest.raises(RetryableError, match="answered 503"):
        attachments.process_attachment(request_id="att-http-503", notice_id=NOTICE_A, url=unavailable)
    limited = server.add("/429", Route(status=429, headers=(("Retry-After", "7"),)))
    with pytest.raises(RateLimited) as caught:
        attachments.process_attachment(request_id="att-http-429", notice_id=NOTICE_A, url=limited)
    assert caught.value.retry_after == 7
    missing = server.add("/gone", Route.error(404))
    with pytest.raises(PermanentError, match="answered 404"):
        attachments.process_attachment(request_id="att-http-404", notice_id=NOTICE_A, url=missing)
    loop = server.add("/loop", Route.redirect("/loop"))
    with pytest.raises(PermanentError, match="redirects more than"):
        attachments.process_attachment(request_id="att-http-loop", notice_id=NOTICE_A, url=loop)
    assert server.hits("/loop") == 6  # the first request and five redirects


def test_non_public_addresses_are_refused_by_default(
    env: dict[str, str], server: AttachmentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTACHMENT_ALLOW_PRIVATE_HOSTS", "false")
    reset_settings()
    url = server.add("/internal.pdf", Route.file(SOLICITATION))
    for number, target in enumerate((url, url.replace("127.0.0.1", "localhost"))):
        with pytest.raises(PermanentError, match="non-public address"):
            attachments.process_attachment(request_id=f"att-private-{number}", notice_id=NOTICE_A, url=target)
    assert server.hits("/internal.pdf") == 0  # refused before connecting
