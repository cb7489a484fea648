"""``process_attachment``: download a notice's attachment, identify it, extract its text, once per distinct file.

One request (``request_id``) is one ``documents`` row and one file, through :func:`app.documents.storage.produce`:
the body is streamed into the attempt's temporary file and renamed to ``attachments/requests/<request id>``
when everything succeeded. The distinct file behind it is kept once, by sha256, in ``attachments/blobs/``
(a hard link to the same bytes, so a file shared by twenty notices takes its space once) with its text per page
beside it (``<sha256>.pages.json``); the ``attachments`` row describes it and ``attachment_notices`` links it
to every notice that referenced it. A second notice with the same bytes is linked without being read again.

Failures (classified in :mod:`app.documents.download` and :mod:`app.documents.extract`): a file that is
unsupported or corrupt is recorded as a ``failed`` attachment (so the same bytes fail at once next time) and
raises :class:`~app.errors.PermanentError`; an oversized body, a 4xx or a bad URL is permanent too; 5xx,
timeouts and truncated bodies are retried.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select, update

from app import metrics
from app.constants import DOCUMENTS_QUEUE
from app.db.dialect import insert_for
from app.db.models import Attachment, AttachmentNotice
from app.db.session import autocommit, transaction
from app.db.types import utcnow
from app.documents import storage
from app.documents.download import Policy, download
from app.documents.extract import EXTENSIONS, Extracted, extract, sniff
from app.errors import PermanentError, RetryableError
from app.settings import get_settings

logger = logging.getLogger(__name__)

_ATTACHMENTS: Table = Attachment.__table__  # type: ignore[assignment]
_LINKS: Table = AttachmentNotice.__table__  # type: ignore[assignment]

PROCESSED, FAILED = "processed", "failed"
#: Outcomes counted in ``worker_attachments_processed`` besides ``processed`` (read for the first time).
DEDUPLICATED, REJECTED, RETRYING = "deduplicated", "rejected", "retrying"
#: ``documents.kind`` and ``format`` of an attachment request (its real type is the row's ``content_type``).
KIND, FORMAT = "attachment", "file"
#: Share of the progress bar the download takes; identification and extraction take the rest.
DOWNLOAD_SHARE = 80


@dataclass(frozen=True)
class AttachmentRecord:
    """A distinct file as stored: what the compliance matrix and the web app read."""

    id: int
    sha256: str
    file_name: str
    content_type: str | None
    size_bytes: int
    page_count: int | None
    path: str | None
    text_path: str | None
    text_chars: int
    status: str
    error: str | None

    def pages(self) -> list[str]:
        """The text of each page (``[]`` for a failed file)."""
        if self.text_path is None:
            return []
        loaded = json.loads(storage.resolve(self.text_path).read_text(encoding="utf-8"))
        return [str(page) for page in loaded]


def request_path(request_id: str) -> str:
    """Where a request's file is, relative to STORAGE_DIR."""
    return f"attachments/requests/{request_id}"


def blob_paths(sha256: str, extension: str) -> tuple[str, str]:
    """The distinct file's path and its text's path, relative to STORAGE_DIR."""
    base = f"attachments/blobs/{sha256[:2]}/{sha256}"
    return base + extension, base + ".pages.json"


def process_attachment(*, request_id: str, notice_id: str, url: str) -> AttachmentRecord:
    """Download ``url`` for ``notice_id`` and process it unless its bytes were processed before.

    Idempotent per request id: a redelivered message whose file is already in place does nothing more.
    Returns the distinct file's record. Each attempt counts in ``worker_attachments_processed`` by outcome.
    """
    done = storage.completed(request_id)
    if done is not None and done.sha256 is not None:
        existing = _load(done.sha256)
        if existing is not None:
            return existing
    try:
        record, outcome = _attempt(request_id=request_id, notice_id=notice_id, url=url)
    except PermanentError:
        _count(REJECTED)
        raise
    except RetryableError:
        _count(RETRYING)
        raise
    _count(outcome)
    logger.info(
        "attachment processed",
        extra={
            "action": "attachment_processed",
            "outcome": outcome,
            "request_id": request_id,
            "sha256": record.sha256,
            "content_type": record.content_type,
            "pages": record.page_count,
            "size": record.size_bytes,
        },
    )
    return record


def _attempt(*, request_id: str, notice_id: str, url: str) -> tuple[AttachmentRecord, str]:
    settings = get_settings()
    params = {"notice_id": notice_id, "url": url}
    with storage.produce(
        request_id, kind=KIND, fmt=FORMAT, params=params, relative_path=request_path(request_id)
    ) as out:

        def report(received: int, expected: int | None) -> None:
            if expected:
                out.progress(DOWNLOAD_SHARE * received / expected)

        got = download(url, target=out.temp_path, policy=Policy.from_settings(settings), on_progress=report)
        out.progress(DOWNLOAD_SHARE)
        record = _load(got.sha256)
        outcome = DEDUPLICATED
        if record is None:
            record, outcome = (
                _process_new(got.path, sha256=got.sha256, size=got.size, file_name=got.file_name),
                PROCESSED,
            )
        elif record.path is not None:
            _link_file(storage.resolve(record.path), out.temp_path)  # the bytes are kept once
        name = got.file_name
        if record.content_type in EXTENSIONS:
            name = _with_extension(name, EXTENSIONS[record.content_type])
        _link(record.id, notice_id=notice_id, url=url, file_name=name, request_id=request_id)
        if record.status == FAILED:
            raise PermanentError(record.error or "attachment could not be processed")
        out.content_type = record.content_type or "application/octet-stream"
        out.page_count = record.page_count
    return record, outcome


def _count(outcome: str) -> None:
    metrics.ATTACHMENTS_PROCESSED.labels(DOCUMENTS_QUEUE, outcome).inc()


def attachments_of(notice_id: str) -> list[AttachmentRecord]:
    """The processed attachments of a notice, oldest link first (the order the compliance matrix reads them),
    each under the file name this notice gave it."""
    query = (
        select(_ATTACHMENTS, _LINKS.c.file_name.label("link_file_name"))
        .join(_LINKS, _LINKS.c.attachment_id == _ATTACHMENTS.c.id)
        .where(_LINKS.c.notice_id == notice_id, _ATTACHMENTS.c.status == PROCESSED)
        .order_by(_LINKS.c.created_at, _LINKS.c.id)
    )
    with autocommit() as conn:
        rows = [row._asdict() for row in conn.execute(query)]
    return [_record({**row, "file_name": row["link_file_name"]}) for row in rows]


def notices_of(sha256: str) -> list[str]:
    """The notice ids that reference the file with ``sha256``."""
    query = (
        select(_LINKS.c.notice_id)
        .join(_ATTACHMENTS, _LINKS.c.attachment_id == _ATTACHMENTS.c.id)
        .where(_ATTACHMENTS.c.sha256 == sha256)
        .order_by(_LINKS.c.notice_id)
    )
    with autocommit() as conn:
        return [str(notice) for notice in conn.scalars(query)]


def _process_new(temp: Path, *, sha256: str, size: int, file_name: str) -> AttachmentRecord:
    """Identify and read a file seen for the first time; store it by sha256 and insert its row."""
    try:
        content_type = sniff(temp)
        extracted = extract(temp, content_type)
    except PermanentError as err:
        return _insert(
            sha256=sha256,
            file_name=file_name,
            size_bytes=size,
            status=FAILED,
            error=str(err),
        )
    blob, text = blob_paths(sha256, extracted.extension)
    _store_blob(temp, storage.resolve(blob))
    chars = _store_text(extracted, storage.resolve(text))
    return _insert(
        sha256=sha256,
        file_name=_with_extension(file_name, extracted.extension),
        size_bytes=size,
        status=PROCESSED,
        content_type=extracted.content_type,
        page_count=extracted.page_count,
        path=blob,
        text_path=text,
        text_chars=chars,
    )


def _with_extension(file_name: str, extension: str) -> str:
    """The name with the extension of what the file really is (``report.html`` that is a PDF: ``report.pdf``)."""
    stem, dot, suffix = file_name.rpartition(".")
    if dot and stem and f".{suffix.lower()}" == extension:
        return file_name
    return (stem if dot and stem else file_name) + extension


def _store_blob(temp: Path, blob: Path) -> None:
    """Give the distinct file its content-addressed name: a hard link to the attempt's bytes.

    Same bytes under the same name, so a racing worker doing the same is harmless.
    """
    blob.parent.mkdir(parents=True, exist_ok=True)
    _link_file(temp, blob)


def _link_file(source: Path, target: Path) -> None:
    """Make ``target`` name the same bytes as ``source`` (a hard link, renamed over ``target`` atomically);
    a file system without hard links gets a copy."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.link")
    staging.unlink(missing_ok=True)
    try:
        os.link(source, staging)
    except OSError:
        shutil.copyfile(source, staging)
    os.replace(staging, target)


def _store_text(extracted: Extracted, target: Path) -> int:
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(list(extracted.pages), ensure_ascii=False), encoding="utf-8")
    os.replace(staging, target)
    return sum(len(page) for page in extracted.pages)


def _insert(**values: Any) -> AttachmentRecord:
    """Insert the row of a new sha256; a concurrent insert of the same one wins and is returned instead."""
    now = utcnow()
    with transaction() as conn:
        conn.execute(
            insert_for(conn, _ATTACHMENTS)
            .values(created_at=now, updated_at=now, **{"text_chars": 0, **values})
            .on_conflict_do_nothing(index_elements=[_ATTACHMENTS.c.sha256])
        )
        row = conn.execute(select(_ATTACHMENTS).where(_ATTACHMENTS.c.sha256 == values["sha256"])).one()
    return _record(row._asdict())


def _link(attachment_id: int, *, notice_id: str, url: str, file_name: str, request_id: str) -> None:
    with transaction() as conn:
        conn.execute(
            insert_for(conn, _LINKS)
            .values(
                attachment_id=attachment_id,
                notice_id=notice_id,
                url=url,
                file_name=file_name,
                request_id=request_id,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=[_LINKS.c.notice_id, _LINKS.c.attachment_id])
        )
        conn.execute(
            update(_ATTACHMENTS).where(_ATTACHMENTS.c.id == attachment_id).values(updated_at=utcnow())
        )


def _load(sha256: str) -> AttachmentRecord | None:
    with autocommit() as conn:
        row = conn.execute(select(_ATTACHMENTS).where(_ATTACHMENTS.c.sha256 == sha256)).first()
    return None if row is None else _record(row._asdict())


def _record(row: dict[str, Any]) -> AttachmentRecord:
    return AttachmentRecord(**{name: row[name] for name in AttachmentRecord.__dataclass_fields__})
