"""``EMAIL_BACKEND=console``: prints each email to stdout, for a developer's terminal (never the logs)."""

from __future__ import annotations

import sys
from typing import TextIO

from app.email.backends.mime import build_mime
from app.email.message import OutgoingEmail


class ConsoleBackend:
    name = "console"

    def __init__(self, *, sender: str, stream: TextIO | None = None) -> None:
        self.sender = sender
        self.stream = stream

    def send(self, outgoing: OutgoingEmail) -> str:
        msg = build_mime(outgoing, sender=self.sender)
        stream = self.stream or sys.stdout
        stream.write(msg.as_string() + "\n")
        stream.flush()
        return str(msg["Message-ID"])
