"""``EMAIL_BACKEND=sendgrid``: v3 Mail Send over one shared urllib3 connection pool (docs/sendgrid.md).

In production a send waits 100–600 ms on SendGrid, so a worker's email throughput is set by how many sends are in
flight at once: the transport's job is to reuse connections (no TCP and TLS handshake per email) through public
APIs only, and to cost little CPU, since one process's threads share one GIL (docs/benchmarks.md: with
``httpx.Client`` the worker spent 1.2–1.3 ms more CPU per email and reached 7–17 % less of its concurrency
bound at 32 threads). One ``urllib3.PoolManager`` per process is shared by every worker thread; it keeps a
connection per thread that sends (see :meth:`SendGridBackend.__init__`), checks a kept connection is still open
before reusing it, and every request has a connect and a read timeout, since a hung connection would hold a
worker thread. The body is the v3 JSON that :func:`build_payload` builds (the shape the SDK's ``Mail.get()``
produces, without building the SDK's object graph per email).

Failures are classified at this boundary: 400/401/403/413 and other 4xx are permanent and carry SendGrid's own
error text; 429 waits until ``X-RateLimit-Reset``; 408, 5xx and network errors (a request that may or may not
have been accepted) are retried. The API key travels only in the ``Authorization`` header: it is never part of a
log line or an exception's text.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import json
import logging
import time
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
import urllib3

from app.email.message import OutgoingEmail
from app.errors import JobError, PermanentError, RateLimited, RetryableError

logger = logging.getLogger(__name__)

MAIL_SEND_PATH = "/v3/mail/send"
#: Seconds to establish a connection (TCP and TLS), at most the read timeout.
CONNECT_TIMEOUT_S = 5.0
#: Connections the pool keeps: more than any worker's thread count. The client is synchronous, so a process never
#: has more requests in flight (nor opens more connections) than threads sending; a smaller pool would close and
#: reopen the connections of the threads beyond it.
MAX_KEPT_CONNECTIONS = 256
#: Wait when a 429 names no reset time.
DEFAULT_RATE_LIMIT_WAIT_S = 60.0
#: Never wait longer than this on one 429, whatever the header says (a clock skew must not park a message).
MAX_RATE_LIMIT_WAIT_S = 3600.0
#: Statuses that mean "not now" rather than "never" (besides 429 and 5xx).
TRANSIENT_4XX = frozenset({408})


class SendGridBackend:
    name = "sendgrid"

    def __init__(self, *, api_key: str, host: str, timeout_s: float, sender: str) -> None:
        self.url = host.rstrip("/") + MAIL_SEND_PATH
        self.sender = sender
        # The pool does not block: a thread never waits for another's connection. With more threads than
        # MAX_KEPT_CONNECTIONS, the extra connections are closed after use (urllib3 warns). No retries: a POST
        # that failed may have been accepted, and the retry policy and the claim decide (docs/email.md).
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        options: dict[str, Any] = {
            "maxsize": MAX_KEPT_CONNECTIONS,
            "block": False,
            "headers": self._headers,
            "timeout": urllib3.Timeout(connect=min(CONNECT_TIMEOUT_S, timeout_s), read=timeout_s),
            "retries": False,
        }
        proxy = _proxy_for(self.url)
        self._pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        # Sends go straight to the host's connection pool: the manager's request() would parse the URL, look the
        # pool up and merge the headers on every send (a quarter of a send's CPU). Only a plain-http host behind
        # a proxy needs the manager itself, which forwards the absolute URL.
        parts = urlsplit(self.url)
        forwarded = proxy is not None and parts.scheme == "http"
        self._host_pool = None if forwarded else self._pool.connection_from_url(self.url)
        self._path = parts.path

    def send(self, outgoing: OutgoingEmail) -> str | None:
        body = orjson.dumps(build_payload(outgoing, sender=self.sender))
        try:
            if self._host_pool is not None:
                response = self._host_pool.urlopen("POST", self._path, body=body, headers=self._headers)
            else:
                response = self._pool.request("POST", self.url, body=body)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            # Timeouts, refused or reset connections, a connection dropped before the response: the request may
            # or may not have been accepted; retrying is the only safe move (docs/email.md, "the open window").
            # The text names the error class and its reason, never the request (whose headers hold the key).
            raise RetryableError(f"SendGrid unreachable: {type(err).__name__}: {str(err)[:200]}") from err
        if response.status >= 400:
            raise classify_http_error(response.status, response.data, response.headers)
        return response.headers.get("X-Message-Id") or None

    def close(self) -> None:
        """Close the pooled connections (a process's backend lives as long as the process)."""
        self._pool.clear()


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY``...), as urllib reads them."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


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
