"""Files under ``STORAGE_DIR`` attached to an email (the weekly PDF report made by the documents queue)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path

from app.email.message import Attachment
from app.errors import PermanentError, RetryableError
from app.settings import get_settings


def load_attachments(
    relative_paths: Iterable[str], *, storage_dir: Path | None = None
) -> tuple[Attachment, ...]:
    """Read each file; a path leaving the storage directory is permanent, a missing file is transient.

    A missing file is most likely a document not written yet (the documents queue runs on its own), so the
    email is retried rather than sent without it.
    """
    root = (storage_dir or get_settings().storage_dir).resolve()
    loaded = []
    for relative in relative_paths:
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise PermanentError(f"attachment {relative!r} is outside STORAGE_DIR")
        try:
            content = path.read_bytes()
        except FileNotFoundError as err:
            raise RetryableError(f"attachment {relative!r} does not exist (yet)") from err
        except OSError as err:
            raise RetryableError(f"attachment {relative!r} unreadable: {err.strerror}") from err
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        loaded.append(Attachment(filename=path.name, content=content, content_type=content_type))
    return tuple(loaded)
