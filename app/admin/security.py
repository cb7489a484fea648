"""The admin's outer ASGI layers: which proxy to believe, which Host names to answer, which headers every
response carries.

They wrap the whole app (see :class:`app.admin.app.AdminApp`), outside Starlette's error middleware, so a 400
for a foreign Host and a 500 from a bug carry the same security headers as any page.

- :class:`ForwardedHeaders`: ``X-Forwarded-Proto`` and ``X-Forwarded-For`` count only when the direct peer is
  one of ``ADMIN_TRUSTED_PROXIES``; anyone else could claim HTTPS or another client address.
- :class:`HostGuard`: answers 400 unless ``Host`` is allowed (DNS rebinding: a hostile page whose name is
  re-pointed at 127.0.0.1 is still sent with its own name as ``Host``). ``/health``, ``/health/ready`` and
  ``/metrics`` are exempt: probes and Prometheus address pods by IP, and those endpoints carry no admin data.
- :class:`SecurityHeaders`: CSP, framing, sniffing, referrer, ``no-store`` on everything but static files, HSTS
  over HTTPS.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings

logger = logging.getLogger(__name__)

#: The names a browser on the same machine uses; the only ones served without a password.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Same-origin everything, no inline script, no plugins, no <base> tricks, forms post only here, never framed.
#: ``data:`` images are Swagger UI's icons (the admin's own pages use none).
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Sent with every response.
SECURITY_HEADERS = {
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"content-security-policy": CSP.encode(),
    b"cross-origin-opener-policy": b"same-origin",
}
#: Over HTTPS only: a year, this host only (subdomains may be other people's services).
HSTS = b"max-age=31536000"
#: Paths answered whatever the Host (probes and scrapers address the pod by IP).
HOST_EXEMPT = ("/health", "/health/ready", "/metrics")
#: Methods that change nothing: the only ones allowed without a matching Origin.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: Files that may be cached: everything else (pages, API answers with dead letters in them) is ``no-store``.
CACHEABLE_PREFIX = "/admin/static/"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def app_path(scope: Scope) -> str:
    """The path inside the admin, without the ``root_path`` it is mounted under."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", "")).rstrip("/")
    return path.removeprefix(root) if root and path.startswith(root) else path


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def trusted_networks(settings: Settings) -> tuple[Network, ...]:
    """``ADMIN_TRUSTED_PROXIES`` parsed (the settings validator has already refused what does not parse)."""
    return tuple(ipaddress.ip_network(p, strict=False) for p in split_list(settings.admin_trusted_proxies))


def allowed_hosts(settings: Settings, *, auth_enabled: bool) -> tuple[str, ...]:
    """Host names to answer: ``ADMIN_ALLOWED_HOSTS`` (loopback names when unset); loopback only without auth."""
    configured = tuple(h.lower() for h in split_list(settings.admin_allowed_hosts))
    if not auth_enabled or not configured:
        return LOOPBACK_HOSTS
    return configured


def non_loopback(hosts: Iterable[str]) -> list[str]:
    return [h for h in hosts if h.lower() not in LOOPBACK_HOSTS]


def host_name(host: str) -> str:
    """``Host`` header value to a bare lower-case name: port and IPv6 brackets removed."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    name = host_name(host)
    if not name:
        return False
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def origin_matches(headers: Headers) -> bool:
    """Whether a write comes from the admin's own pages: ``Origin`` (else ``Referer``) names the ``Host``.

    A browser always sends ``Origin`` with a cross-site POST, so a request with neither header comes from a
    script (curl), which still needs the CSRF token. ``Origin: null`` (sandboxed frames, some redirects) is
    refused.
    """
    host = headers.get("host", "").strip().lower()
    source = headers.get("origin")
    if source is None:
        source = headers.get("referer")
        if source is None:
            return True
    parts = urlsplit(source.strip())
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host


class ForwardedHeaders:
    """Believe ``X-Forwarded-Proto`` / ``X-Forwarded-For`` from ``trusted`` peers only (pure ASGI)."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and self.trusted and client and self._is_trusted(str(client[0])):
            headers = Headers(scope=scope)
            scope = dict(scope)
            proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
            # The right-most address no trusted proxy added is the client (left ones are the client's claim).
            chain = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
            for address in reversed(chain):
                if not self._is_trusted(address):
                    scope["client"] = (address, 0)
                    break
        await self.app(scope, receive, send)


class HostGuard:
    """400 for a ``Host`` outside the allow-list, 403 for a write from another origin (pure ASGI).

    The probes' paths are exempt from the Host check; no path is exempt from the origin check of writes.
    """

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers, path = Headers(scope=scope), app_path(scope)
        host = headers.get("host", "")
        if path not in HOST_EXEMPT and not host_allowed(host, self.allowed):
            _refused("security.host_refused", host=host, path=path)
            await _answer(send, 400, "host not allowed (ADMIN_ALLOWED_HOSTS)")
            return
        if scope["method"] not in SAFE_METHODS and not origin_matches(headers):
            origin = headers.get("origin") or headers.get("referer") or ""
            _refused("security.origin_refused", host=origin, path=path)
            await _answer(send, 403, "cross-origin write refused (Origin does not match Host)")
            return
        await self.app(scope, receive, send)


def _refused(action: str, *, host: str, path: str) -> None:
    logger.warning("admin request refused", extra={"action": action, "host": host[:200], "path": path[:200]})


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS`, ``Cache-Control: no-store`` and (over HTTPS) HSTS to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = dict(SECURITY_HEADERS)
        if not app_path(scope).startswith(CACHEABLE_PREFIX):
            extra[b"cache-control"] = b"no-store"
        if scope.get("scheme") == "https":
            extra[b"strict-transport-security"] = HSTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in extra]
                message["headers"] = [*kept, *extra.items()]
            await send(message)

        await self.app(scope, receive, send_with_headers)
