"""The RFC 5322 form of an email, shared by the SMTP, file and console backends."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from email.policy import SMTP

from app.email.message import OutgoingEmail

#: RFC 5322's hard line limit: long URLs in List-Unsubscribe stay on one line instead of being folded.
POLICY = SMTP.clone(max_line_length=998)
#: Header that carries the idempotency key, so a duplicate can be traced in any mailbox or outbox.
IDEMPOTENCY_HEADER = "X-Idempotency-Key"


def build_mime(outgoing: OutgoingEmail, *, sender: str) -> EmailMessage:
    """multipart/alternative (text, then HTML), wrapped in multipart/mixed when there are attachments."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = email.utils.formataddr((outgoing.to_name, outgoing.to_email))
    msg["Subject"] = outgoing.subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain=_domain(sender))
    msg[IDEMPOTENCY_HEADER] = outgoing.idempotency_key
    for name, value in outgoing.headers.items():
        msg[name] = value
    msg.set_content(outgoing.text, subtype="plain", charset="utf-8")
    msg.add_alternative(outgoing.html, subtype="html", charset="utf-8")
    for attachment in outgoing.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return msg


def _domain(sender: str) -> str:
    address = email.utils.parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"
