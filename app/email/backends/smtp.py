"""``EMAIL_BACKEND=smtp``: one SMTP session per email to ``SMTP_HOST:SMTP_PORT`` (a relay or a local catcher).

Replies are classified the SMTP way: 5xx is permanent, 4xx and lost connections are transient.
"""

from __future__ import annotations

import smtplib

from app.email.backends.mime import build_mime
from app.email.message import OutgoingEmail
from app.errors import PermanentError, RetryableError


class SmtpBackend:
    name = "smtp"

    def __init__(self, *, host: str, port: int, sender: str, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_s = timeout_s

    def send(self, outgoing: OutgoingEmail) -> str:
        msg = build_mime(outgoing, sender=self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as client:
                client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            raise _classify(min(codes) if codes else 550, "recipient refused") from err
        except smtplib.SMTPResponseException as err:
            raise _classify(err.smtp_code, _text(err.smtp_error)) from err
        except smtplib.SMTPNotSupportedError as err:
            raise PermanentError(f"SMTP server does not support the request: {err}") from err
        except (smtplib.SMTPException, OSError) as err:
            raise RetryableError(f"SMTP connection failed: {type(err).__name__}") from err
        return str(msg["Message-ID"])


def _classify(code: int, text: str) -> PermanentError | RetryableError:
    message = f"SMTP {code}: {text}"
    return PermanentError(message) if 500 <= code < 600 else RetryableError(message)


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
