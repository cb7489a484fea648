"""What a backend sends: one rendered email to one recipient, independent of the transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    """A file to attach; ``content`` is the raw bytes (each backend encodes them its own way)."""

    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered email. ``idempotency_key`` travels with it (SendGrid custom_args, X-Idempotency-Key header)
    so that the one duplicate the claim protocol cannot prevent can still be traced at the provider."""

    idempotency_key: str
    kind: str
    to_email: str
    to_name: str
    subject: str
    text: str
    html: str
    #: Extra headers, e.g. ``List-Unsubscribe``.
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
