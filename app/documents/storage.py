"""Writing one document: claim its row, write a temporary file, rename it into place, record what was written.

Usage by a service (the report, export, attachment and compliance-matrix jobs all go through it)::

    with storage.produce(request_id, kind="report", fmt="pdf", user_id=7, params={...}) as out:
        out.page_count = pdf.render_pdf("documents/pipeline.html", context, out.temp_path)
        out.progress(50)

The guarantees (docs/documents.md "Guarantees"):

- one row per request id (:mod:`app.documents.records`), whatever the number of attempts;
- the final file appears only complete: it is written under ``STORAGE_DIR/.partial/`` (the same file system)
  and moved into place with :func:`os.replace`, which is atomic; a reader sees the old file or the new one;
- a failed attempt deletes its temporary file; a killed one cannot, so each new attempt of the same request
  deletes the partial files its predecessors left (:func:`sweep_partials` removes old ones of any request).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.documents import records
from app.errors import PermanentError, RetryableError
from app.settings import get_settings

logger = logging.getLogger(__name__)

#: Sub-directory of STORAGE_DIR for files being written; never served.
PARTIAL_DIR = ".partial"
#: What each format is served as.
CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain; charset=utf-8",
}
#: Progress is written at most this often (seconds), and only when the whole percentage changed.
PROGRESS_INTERVAL_S = 0.5
#: A relative path component: letters, digits, dot, dash, underscore; not starting with a dot.
_SAFE_PART = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
_CHUNK = 1 << 20


@dataclass
class DocumentOutput:
    """The file an attempt writes. Set ``page_count``/``row_count``/``content_type`` before the block ends."""

    request_id: str
    #: Where to write: a fresh file name under STORAGE_DIR/.partial, on the final file's file system.
    temp_path: Path
    #: The final location, relative to STORAGE_DIR (what the email's ``attachments`` and the web app use).
    relative_path: str
    content_type: str
    page_count: int | None = None
    row_count: int | None = None
    _report: Callable[[int], None] = field(default=lambda _pct: None, repr=False)

    def progress(self, percent: float) -> None:
        """Report progress (0-100); cheap to call per row, the database sees a few writes per second at most."""
        self._report(max(0, min(99, int(percent))))


def default_path(kind: str, request_id: str, fmt: str) -> str:
    """``reports/<request id>.pdf``: the final path of a request, known before its job runs (for emails)."""
    return f"{_safe(kind)}s/{_safe(request_id)}.{_safe(fmt)}"


def storage_root() -> Path:
    return get_settings().storage_dir.resolve()


def resolve(relative_path: str) -> Path:
    """The absolute path of a file under STORAGE_DIR; :class:`PermanentError` for a path that would leave it."""
    root = storage_root()
    parts = relative_path.split("/")
    if not relative_path or any(not _SAFE_PART.match(part) for part in parts):
        raise PermanentError(f"unsafe document path {relative_path!r}")
    path = (root / relative_path).resolve()
    if not path.is_relative_to(root) or path == root:
        raise PermanentError(f"document path {relative_path!r} leaves STORAGE_DIR")
    return path


@contextmanager
def produce(
    request_id: str,
    *,
    kind: str,
    fmt: str,
    user_id: int | None = None,
    params: Mapping[str, Any] | None = None,
    relative_path: str | None = None,
    message_id: str | None = None,
) -> Iterator[DocumentOutput]:
    """Claim the row of ``request_id`` (status ``running``) and give the attempt a temporary file to write.

    On a clean exit the file is fsynced, renamed to ``relative_path`` (default :func:`default_path`) and the row
    marked ``ready`` with size, sha256, page/row count and content type. On an exception the temporary file is
    deleted, the row records the error (``failed`` for a :class:`PermanentError`, else ``retrying``), and the
    exception propagates to the retry policy. ``message_id`` defaults to the Dramatiq message being processed.
    """
    relative = relative_path or default_path(kind, request_id, fmt)
    final = resolve(relative)
    partial_dir = storage_root() / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_partials(partial_dir, request_id)
    sweep_partials()  # a listing of a directory holding a few files at most: cheap per job
    records.claim(
        records.Claim(
            request_id=request_id,
            kind=kind,
            format=fmt,
            user_id=user_id,
            path=relative,
            params=dict(params or {}),
            message_id=message_id or _current_message_id(),
        )
    )
    temp = partial_dir / f"{_safe(request_id)}.{secrets.token_hex(4)}.{_safe(fmt)}"
    output = DocumentOutput(
        request_id=request_id,
        temp_path=temp,
        relative_path=relative,
        content_type=CONTENT_TYPES.get(fmt, "application/octet-stream"),
        _report=_throttled(request_id),
    )
    try:
        yield output
        if not temp.exists():
            # Removed by a newer attempt of the same request that started meanwhile (or never written): the
            # retry finds the request done by that attempt, or fails the same way until dead-lettered.
            raise RetryableError(f"{kind} {request_id}: its temporary file is gone")
        size, digest = _sync_and_hash(temp)
        os.replace(temp, final)
        _sync_dir(final.parent)
    except BaseException as err:
        temp.unlink(missing_ok=True)
        final_failure = isinstance(err, PermanentError)
        _record_failure(request_id, err, final=final_failure)
        _count(kind, fmt, "failed" if final_failure else "retrying")
        raise
    records.mark_ready(
        request_id,
        path=relative,
        content_type=output.content_type,
        size_bytes=size,
        sha256=digest,
        page_count=output.page_count,
        row_count=output.row_count,
    )
    _count(kind, fmt, "ready")


def _record_failure(request_id: str, err: BaseException, *, final: bool) -> None:
    """Best effort: the retry policy must see the job's own error, not a database error met while noting it
    (the row then says ``running`` until the next attempt claims it)."""
    try:
        records.mark_failed(request_id, _describe(err), final=final)
    except Exception:
        logger.warning(
            "could not record a document's failure", extra={"request_id": request_id}, exc_info=True
        )


def _count(kind: str, fmt: str, status: str) -> None:
    from app.constants import DOCUMENTS_QUEUE
    from app.metrics import DOCUMENTS_WRITTEN

    DOCUMENTS_WRITTEN.labels(DOCUMENTS_QUEUE, kind, fmt, status).inc()


def completed(request_id: str) -> records.DocumentStatus | None:
    """The row of a request whose file is already in place (a redelivered message has nothing to do)."""
    status = records.load(request_id)
    if status is None or not status.ready or status.path is None:
        return None
    return status if resolve(status.path).is_file() else None


def sweep_partials(older_than_s: float = 24 * 3600) -> int:
    """Delete temporary files older than ``older_than_s`` (left by killed attempts never retried); every
    attempt calls it, and no attempt runs that long (the actors' time limits are minutes)."""
    partial_dir = storage_root() / PARTIAL_DIR
    if not partial_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for path in partial_dir.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _remove_partials(partial_dir: Path, request_id: str) -> None:
    for leftover in partial_dir.glob(f"{_safe(request_id)}.*"):
        leftover.unlink(missing_ok=True)


def _throttled(request_id: str) -> Callable[[int], None]:
    last = {"percent": -1, "at": 0.0}

    def report(percent: int) -> None:
        now = time.monotonic()
        if percent == last["percent"] or now - last["at"] < PROGRESS_INTERVAL_S:
            return
        last["percent"], last["at"] = percent, now
        records.set_progress(request_id, percent)

    return report


def _sync_and_hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb+") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        os.fsync(handle.fileno())
    return size, digest.hexdigest()


def _sync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX keeps directory entries in the directory's own blocks)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe(part: str) -> str:
    if not _SAFE_PART.match(part):
        raise PermanentError(f"unsafe name for a document path: {part!r}")
    return part


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _current_message_id() -> str | None:
    # Imported late: importing storage (app.enqueue, app.metrics do) does not load Dramatiq.
    from app.actor import current_message_id

    return current_message_id()
