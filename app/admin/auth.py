"""Who is asking, and may they write: HTTP Basic or a server-side session; CSRF tokens for every write.

Two fixed logins: ``admin`` with ``ADMIN_PASSWORD`` (read/write) and ``viewer`` with ``ADMIN_VIEWER_PASSWORD``
(read only). With neither set nobody logs in and everyone is the local operator with the admin role; that is
only safe because :func:`app.admin.server.serve` then binds 127.0.0.1 alone and
:class:`app.admin.security.HostGuard` answers loopback names only (no DNS rebinding).

Every password check (form or Basic) goes through :func:`attempt_login`: throttled per client and per user
in Redis (:mod:`app.admin.throttle`), each failure logged as a security event and counted in
``admin_login_failures_total``.

Writes also need ``X-CSRF-Token`` equal to the token kept in the session (``GET /admin/api/csrf`` hands it
out); the login and logout forms carry a token too. :class:`app.admin.security.HostGuard` also refuses any
write whose ``Origin``/``Referer`` names another host.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import HTTPException, Request, status

from app import metrics
from app.admin import sessions, throttle
from app.redis_client import get_redis
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

Role = Literal["admin", "viewer"]
#: The header a write must carry, equal to the session's token.
CSRF_HEADER = "X-CSRF-Token"
#: Session keys.
SESSION_USER, SESSION_ROLE, SESSION_CSRF = "user", "role", "csrf"
#: Session key: fingerprint of the password the session was opened with (a changed password ends it).
SESSION_PASSWORD = "pw"
#: The operator's name in the audit log when no password is configured.
LOCAL_USER = "local"
#: Longest user name or password looked at (longer ones are wrong without hashing megabytes).
MAX_CREDENTIAL = 1024


@dataclass(frozen=True)
class Principal:
    """The authenticated operator."""

    user: str
    role: Role

    @property
    def can_write(self) -> bool:
        return self.role == "admin"


class NotAuthenticated(Exception):
    """No valid credentials: pages redirect to the login form, the API answers 401."""


class LoginThrottled(Exception):
    """Too many failed logins from this client or for this user: 429 with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def auth_enabled(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return settings.admin_password is not None or settings.admin_viewer_password is not None


def _logins(settings: Settings) -> list[tuple[str, Role, str | None]]:
    return [
        ("admin", "admin", settings.admin_password.get_secret_value() if settings.admin_password else None),
        (
            "viewer",
            "viewer",
            settings.admin_viewer_password.get_secret_value() if settings.admin_viewer_password else None,
        ),
    ]


def check_password(user: str, password: str, settings: Settings | None = None) -> Principal | None:
    """The principal for a correct user/password pair, else None; constant-time in the password.

    No throttling here: callers serving a request use :func:`attempt_login`.
    """
    settings = settings or get_settings()
    if len(user) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
        return None
    found: Principal | None = None
    for name, role, secret in _logins(settings):
        # Compare every configured login, so timing does not tell which user name exists.
        if secret is None:
            continue
        user_ok = hmac.compare_digest(user.encode(), name.encode())
        password_ok = hmac.compare_digest(password.encode(), secret.encode())
        if user_ok and password_ok:
            found = Principal(name, role)
    return found


def client_address(request: Request) -> str:
    """The caller's address (the proxy's claim only from ``ADMIN_TRUSTED_PROXIES``, see ForwardedHeaders)."""
    return request.client.host if request.client else "unknown"


def attempt_login(request: Request, user: str, password: str) -> Principal | None:
    """:func:`check_password` behind the throttle; raises :class:`LoginThrottled` while locked.

    A failure is logged (event ``security.login_failed``) and counted in ``admin_login_failures_total``.
    """
    settings = get_settings()
    client, address = get_redis(), client_address(request)
    wait = throttle.locked_for(client, client_ip=address, user=user)
    if wait:
        metrics.ADMIN_LOGIN_FAILURES.labels(reason="locked").inc()
        logger.warning(
            "admin login refused: locked",
            extra={
                "action": "security.login_locked",
                "user": user[:64],
                "client": address,
                "retry_after_s": wait,
            },
        )
        raise LoginThrottled(wait)
    principal = check_password(user, password, settings)
    if principal is not None:
        throttle.record_success(client, user=principal.user)
        return principal
    policy = throttle.Policy(settings.admin_login_max_failures, settings.admin_login_lockout_s)
    locked = throttle.record_failure(client, policy, client_ip=address, user=user)
    metrics.ADMIN_LOGIN_FAILURES.labels(reason="wrong_password").inc()
    logger.warning(
        "admin login failed",
        extra={
            "action": "security.login_failed",
            "user": user[:64],
            "client": address,
            "locked_for_s": locked,
        },
    )
    return None


@functools.lru_cache(maxsize=8)
def _fingerprint(user: str, password: str) -> str:
    """A slow, salted digest of the password: tells a changed password apart without storing a fast hash."""
    salt = b"jobs-admin-session:" + user.encode()
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=16).hex()


def password_fingerprint(user: str, settings: Settings | None = None) -> str | None:
    """The fingerprint of ``user``'s configured password; None when that login is not configured."""
    for name, _, secret in _logins(settings or get_settings()):
        if name == user and secret is not None:
            return _fingerprint(name, secret)
    return None


def session_still_valid(data: dict[str, Any]) -> bool:
    """A logged-in session ends when its user's password changed, was removed, or its role no longer fits."""
    user = data.get(SESSION_USER)
    if user is None:
        return True
    expected = password_fingerprint(user) if isinstance(user, str) else None
    role_ok = data.get(SESSION_ROLE) == ("admin" if user == "admin" else "viewer")
    stored = data.get(SESSION_PASSWORD)
    return (
        expected is not None
        and role_ok
        and isinstance(stored, str)
        and hmac.compare_digest(stored.encode(), expected.encode())
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 4 * MAX_CREDENTIAL:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def principal_of(request: Request) -> Principal:
    """The caller, from HTTP Basic (checked, and throttled, on every request) or the session's login.

    Raises :class:`NotAuthenticated` when credentials are missing or wrong, :class:`LoginThrottled` while
    locked out.
    """
    if not auth_enabled():
        return Principal(LOCAL_USER, "admin")
    credentials = _basic_credentials(request)
    if credentials is not None:
        principal = attempt_login(request, *credentials)
        if principal is None:
            raise NotAuthenticated("wrong user or password")
        return principal
    user, role = request.session.get(SESSION_USER), request.session.get(SESSION_ROLE)
    if isinstance(user, str) and role in ("admin", "viewer"):
        return Principal(user, role)
    raise NotAuthenticated("login required")


def log_in(request: Request, principal: Principal) -> None:
    """Start a session under a new id (a fresh CSRF token too: a token never outlives its login)."""
    request.session.clear()
    request.session.update(
        {
            SESSION_USER: principal.user,
            SESSION_ROLE: principal.role,
            SESSION_CSRF: secrets.token_urlsafe(32),
            SESSION_PASSWORD: password_fingerprint(principal.user),
        }
    )
    sessions.rotate(request)


def log_out(request: Request) -> None:
    """End the session: it is deleted from Redis, so a copy of the cookie stops working too."""
    request.session.clear()


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def csrf_valid(request: Request, sent: str) -> bool:
    """Whether ``sent`` is this session's CSRF token (constant-time)."""
    expected = request.session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def require_write(request: Request, principal: Principal) -> None:
    """403 unless the principal has the admin role and the request carries the session's CSRF token."""
    if not principal.can_write:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the admin role is required")
    if not csrf_valid(request, request.headers.get(CSRF_HEADER, "")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER}; GET /admin/api/csrf")
