"""``EMAIL_BACKEND=file`` (the default): each email becomes one ``.eml`` file in ``EMAIL_OUTBOX_DIR``.

Written under a temporary name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from app.email.backends.mime import build_mime
from app.email.message import OutgoingEmail
from app.errors import RetryableError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FileBackend:
    name = "file"

    def __init__(self, *, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def send(self, outgoing: OutgoingEmail) -> str:
        msg = build_mime(outgoing, sender=self.sender)
        stem = f"{time.time_ns()}-{_UNSAFE.sub('_', outgoing.idempotency_key)}"
        target = self.directory / f"{stem}.eml"
        temporary = self.directory / f".{stem}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(msg.as_bytes())
            os.replace(temporary, target)
        except OSError as err:
            raise RetryableError(f"could not write to the outbox: {err.strerror}") from err
        return str(msg["Message-ID"])
