"""The SMTP (against a real aiosmtpd server), file and console backends produce the same parseable message."""

from __future__ import annotations

import email
import email.policy
import io
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.email.backends.console import ConsoleBackend
from app.email.backends.file import FileBackend
from app.email.backends.smtp import SmtpBackend
from app.email.message import Attachment, OutgoingEmail
from app.errors import PermanentError, RetryableError
from tests.support.helpers import free_port

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
EMAIL = OutgoingEmail(
    idempotency_key="weekly:7:2026-W48",
    kind="weekly",
    to_email="ada@example.com",
    to_name="Ada Lovelace",
    subject="Your week 2026-W48",
    text="plain part é",
    html="<p>html part é</p>",
    headers={"List-Unsubscribe": "<https://app.example.com/account/notifications?unsubscribe=weekly>"},
    attachments=(Attachment("weekly-2026-W48.pdf", PDF, "application/pdf"),),
)
SENDER = "Jobs <noreply@example.com>"


def assert_complete(msg: EmailMessage) -> None:
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["Subject"] == EMAIL.subject
    assert msg["X-Idempotency-Key"] == "weekly:7:2026-W48"
    assert msg["List-Unsubscribe"] == EMAIL.headers["List-Unsubscribe"]
    body_text = msg.get_body(("plain",))
    body_html = msg.get_body(("html",))
    assert body_text is not None and body_text.get_content().strip() == "plain part é"
    assert body_html is not None and body_html.get_content().strip() == "<p>html part é</p>"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "weekly-2026-W48.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_file_backend_writes_a_parseable_eml_with_the_attachment(tmp_path: Path) -> None:
    message_id = FileBackend(directory=tmp_path / "outbox", sender=SENDER).send(EMAIL)
    [eml] = list((tmp_path / "outbox").glob("*.eml"))
    msg = parse(eml.read_bytes())
    assert_complete(msg)
    assert msg["Message-ID"] == message_id
    assert not list((tmp_path / "outbox").glob(".*.tmp"))


def test_console_backend_prints_the_message() -> None:
    stream = io.StringIO()
    ConsoleBackend(sender=SENDER, stream=stream).send(EMAIL)
    assert_complete(parse(stream.getvalue().encode()))


class _Recorder:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, _Recorder]]:
    recorder = _Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, recorder
    controller.stop()


def test_smtp_backend_delivers_to_a_real_server(smtp_server: tuple[Controller, _Recorder]) -> None:
    controller, recorder = smtp_server
    SmtpBackend(host="127.0.0.1", port=controller.port, sender=SENDER, timeout_s=5).send(EMAIL)
    [envelope] = recorder.envelopes
    assert envelope.mail_from == "noreply@example.com" and envelope.rcpt_tos == ["ada@example.com"]
    assert isinstance(envelope.original_content, bytes)
    assert_complete(parse(envelope.original_content))


@pytest.mark.parametrize(
    ("reply", "error"), [("550 No such user", PermanentError), ("451 Try later", RetryableError)]
)
def test_smtp_refusals_are_classified(
    smtp_server: tuple[Controller, _Recorder], reply: str, error: type[Exception]
) -> None:
    controller, recorder = smtp_server
    recorder.refuse = reply
    with pytest.raises(error, match=reply.split()[0]):
        SmtpBackend(host="127.0.0.1", port=controller.port, sender=SENDER, timeout_s=5).send(EMAIL)


def test_smtp_unreachable_is_retryable() -> None:
    with pytest.raises(RetryableError):
        SmtpBackend(host="127.0.0.1", port=free_port(), sender=SENDER, timeout_s=2).send(EMAIL)
