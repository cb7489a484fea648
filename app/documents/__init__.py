"""The documents the ``documents`` queue writes, as the web app sees them: status, progress and the file.

Import-light on purpose (no WeasyPrint, no openpyxl): the web app calls :func:`status` to poll a request and
:func:`file_path` or :func:`read_bytes` to serve it once ready. The writing side is :mod:`app.documents.storage`.
"""

from __future__ import annotations

from pathlib import Path

from app.documents.records import DocumentStatus


def status(request_id: str) -> DocumentStatus | None:
    """The state of ``request_id``: None before its job starts, then running/retrying/ready/failed + progress."""
    from app.documents.records import load

    return load(request_id)


def file_path(request_id: str) -> Path | None:
    """The absolute path of the finished file, or None while it is not ready (or was deleted since)."""
    from app.documents.storage import completed, resolve

    done = completed(request_id)
    return None if done is None or done.path is None else resolve(done.path)


def read_bytes(request_id: str) -> bytes | None:
    """The finished file's content, or None while it is not ready."""
    path = file_path(request_id)
    return None if path is None else path.read_bytes()


__all__ = ["DocumentStatus", "file_path", "read_bytes", "status"]
