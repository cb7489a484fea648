"""``EMAIL_BACKEND=sendgrid``: the official SDK against ``SENDGRID_API_HOST`` (docs/shared contract).

Failures are classified at this boundary (contracts/sendgrid.md): 400/401/403/413 and other 4xx are permanent
and carry SendGrid's own error text; 429 waits until ``X-RateLimit-Reset``; 408, 5xx and network errors are
retried. The SDK sets no timeout by default, so one is always set: a hung connection would hold a worker thread.
Requests reuse one connection per thread (:mod:`app.email.backends.keepalive`) instead of one per email.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import http.client
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from app.email.backends.keepalive import sdk_http_client
from app.email.message import OutgoingEmail
from app.errors import JobError, PermanentError, RateLimited, RetryableError

logger = logging.getLogger(__name__)

# The SDK's HTTP client logs whole requests (payload and Authorization header) at DEBUG: keep it quiet even
# when LOG_LEVEL=DEBUG, since neither an API key nor an email body may reach the logs.
logging.getLogger("python_http_client").setLevel(logging.WARNING)

#: Wait when a 429 names no reset time.
DEFAULT_RATE_LIMIT_WAIT_S = 60.0
#: Never wait longer than this on one 429, whatever the header says (a clock skew must not park a message).
MAX_RATE_LIMIT_WAIT_S = 3600.0
#: Statuses that mean "not now" rather than "never" (besides 429 and 5xx).
TRANSIENT_4XX = frozenset({408})


class SendGridBackend:
    name = "sendgrid"

    def __init__(self, *, api_key: str, host: str, timeout_s: float, sender: str) -> None:
        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self.client.client = sdk_http_client(
            self.client.host, request_headers=self.client._default_headers, timeout_s=timeout_s
        )
        self.sender = sender

    def send(self, outgoing: OutgoingEmail) -> str | None:
        payload = build_payload(outgoing, sender=self.sender)
        try:
            response = self.client.send(payload)
        except http_errors.HTTPError as err:
            raise classify_http_error(err.status_code, err.body, err.headers) from err
        except (OSError, http.client.HTTPException) as err:
            # URLError, socket timeouts, resets and a connection dropped before the response: the request may
            # or may not have been accepted; retrying is the only safe move (docs/email.md, "the open window").
            raise RetryableError(f"SendGrid unreachable: {type(err).__name__}: {_reason(err)}") from err
        message_id = response.headers.get("X-Message-Id")
        return str(message_id) if message_id else None


def build_payload(outgoing: OutgoingEmail, *, sender: str) -> dict[str, Any]:
    """The v3 Mail Send body: one personalization, text before HTML, the idempotency key in custom_args."""
    to: dict[str, str] = {"email": outgoing.to_email}
    if outgoing.to_name:
        to["name"] = outgoing.to_name
    payload: dict[str, Any] = {
        "personalizations": [{"to": [to], "custom_args": {"idempotency_key": outgoing.idempotency_key}}],
        "from": dict(_sender_field(sender)),
        "subject": outgoing.subject,
        "content": [
            {"type": "text/plain", "value": outgoing.text},
            {"type": "text/html", "value": outgoing.html},
        ],
        "categories": [outgoing.kind],
        "custom_args": {"kind": outgoing.kind},
    }
    if outgoing.headers:
        payload["headers"] = dict(outgoing.headers)
    if outgoing.attachments:
        payload["attachments"] = [
            {
                "content": base64.b64encode(a.content).decode("ascii"),
                "type": a.content_type,
                "filename": a.filename,
                "disposition": "attachment",
            }
            for a in outgoing.attachments
        ]
    return payload


@functools.cache
def _sender_field(sender: str) -> dict[str, str]:
    """``EMAIL_FROM`` as the v3 ``from`` object (parsed once: it is the same for every email)."""
    name, address = email.utils.parseaddr(sender)
    return {"email": address, **({"name": name} if name else {})}


def classify_http_error(
    status: int, body: bytes | str | None, headers: Mapping[str, str] | None, *, now: float | None = None
) -> JobError:
    """The platform error for a SendGrid error response (pure, so every rule is unit-tested)."""
    text = error_text(body)
    message = f"SendGrid {status}: {text}" if text else f"SendGrid {status}"
    if status == 429:
        return RateLimited(retry_after=_rate_limit_wait(headers, now), message=message)
    if status >= 500 or status in TRANSIENT_4XX:
        return RetryableError(message)
    return PermanentError(message)


def error_text(body: bytes | str | None) -> str:
    """SendGrid's ``errors[].message`` (with the field it names), or the raw body when it is not that shape."""
    if not body:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        errors = json.loads(raw)["errors"]
        parts = [
            f"{e.get('message', '')} (field: {e['field']})" if e.get("field") else str(e.get("message", ""))
            for e in errors
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return raw[:500]
    return "; ".join(parts)[:1000]


def _rate_limit_wait(headers: Mapping[str, str] | None, now: float | None) -> float:
    reset = (headers or {}).get("X-RateLimit-Reset")
    try:
        wait = float(reset) - (time.time() if now is None else now) if reset is not None else None
    except ValueError:
        wait = None
    if wait is None:
        return DEFAULT_RATE_LIMIT_WAIT_S
    return min(max(wait, 0.0), MAX_RATE_LIMIT_WAIT_S)


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None)
    return str(reason if reason is not None else err)[:200]
