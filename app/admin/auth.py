"""Who is asking, and may they write: HTTP Basic or a signed session cookie; CSRF tokens for every write.

Two fixed logins: ``admin`` with ``ADMIN_PASSWORD`` (read/write) and ``viewer`` with ``ADMIN_VIEWER_PASSWORD``
(read only). With neither set nobody logs in and everyone is the local operator with the admin role; that is
only safe because :func:`app.admin.server.serve` then binds 127.0.0.1 alone.

Writes also need ``X-CSRF-Token`` equal to the token kept in the signed session cookie
(``GET /admin/api/csrf`` hands it out), so a page on another origin cannot make the operator's browser
requeue or discard anything, not even against the password-less local admin.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from fastapi import HTTPException, Request, status

from app.settings import Settings, get_settings

Role = Literal["admin", "viewer"]
#: The header a write must carry, equal to the session's token.
CSRF_HEADER = "X-CSRF-Token"
#: Session keys.
SESSION_USER, SESSION_ROLE, SESSION_CSRF = "user", "role", "csrf"
#: The operator's name in the audit log when no password is configured.
LOCAL_USER = "local"


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


def auth_enabled(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return settings.admin_password is not None or settings.admin_viewer_password is not None


def check_password(user: str, password: str, settings: Settings | None = None) -> Principal | None:
    """The principal for a correct user/password pair, else None; constant-time in the password."""
    settings = settings or get_settings()
    logins: list[tuple[str, Role, str | None]] = [
        ("admin", "admin", settings.admin_password.get_secret_value() if settings.admin_password else None),
        (
            "viewer",
            "viewer",
            settings.admin_viewer_password.get_secret_value() if settings.admin_viewer_password else None,
        ),
    ]
    found: Principal | None = None
    for name, role, secret in logins:
        # Compare every configured login, so timing does not tell which user name exists.
        if secret is None:
            continue
        user_ok = hmac.compare_digest(user.encode(), name.encode())
        password_ok = hmac.compare_digest(password.encode(), secret.encode())
        if user_ok and password_ok:
            found = Principal(name, role)
    return found


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def principal_of(request: Request) -> Principal:
    """The caller, from HTTP Basic (checked on every request) or the session the login form set.

    Raises :class:`NotAuthenticated` when credentials are missing or wrong.
    """
    if not auth_enabled():
        return Principal(LOCAL_USER, "admin")
    credentials = _basic_credentials(request)
    if credentials is not None:
        principal = check_password(*credentials)
        if principal is None:
            raise NotAuthenticated("wrong user or password")
        return principal
    user, role = request.session.get(SESSION_USER), request.session.get(SESSION_ROLE)
    if isinstance(user, str) and role in ("admin", "viewer"):
        return Principal(user, role)
    raise NotAuthenticated("login required")


def log_in(request: Request, principal: Principal) -> None:
    """Start a session (a fresh CSRF token too: a token never outlives the login it belongs to)."""
    request.session.clear()
    request.session.update(
        {SESSION_USER: principal.user, SESSION_ROLE: principal.role, SESSION_CSRF: secrets.token_urlsafe(32)}
    )


def log_out(request: Request) -> None:
    request.session.clear()


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def require_write(request: Request, principal: Principal) -> None:
    """403 unless the principal has the admin role and the request carries the session's CSRF token."""
    if not principal.can_write:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the admin role is required")
    expected = request.session.get(SESSION_CSRF)
    sent = request.headers.get(CSRF_HEADER, "")
    valid = isinstance(expected, str) and expected != ""
    if not valid or not hmac.compare_digest(sent.encode(), str(expected).encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER}; GET /admin/api/csrf")
