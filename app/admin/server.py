"""``serve()``: run the admin app under uvicorn (``jobs admin``).

Without ``ADMIN_PASSWORD`` or ``ADMIN_VIEWER_PASSWORD`` nobody logs in and everyone may requeue and discard,
so the server then refuses any address but the loopback one, and any ``ADMIN_ALLOWED_HOSTS`` naming another
host (the admin would answer loopback names only anyway).
"""

from __future__ import annotations

import logging

import uvicorn

from app.admin import security
from app.admin.app import create_app
from app.admin.auth import auth_enabled
from app.errors import SettingsError
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: The only address the admin binds when no password is configured.
LOOPBACK = "127.0.0.1"


def bind_address(host: str, settings: Settings | None = None) -> str:
    """``host`` if allowed; raises :class:`SettingsError` for a non-loopback address without passwords."""
    settings = settings or get_settings()
    if auth_enabled(settings):
        return host
    foreign = security.non_loopback(security.split_list(settings.admin_allowed_hosts))
    if foreign:
        raise SettingsError(
            "ADMIN_ALLOWED_HOSTS names non-loopback hosts but no ADMIN_PASSWORD (or ADMIN_VIEWER_PASSWORD) "
            "is set: the admin without a password answers loopback names only"
        )
    if host in (LOOPBACK, "localhost"):
        return LOOPBACK
    raise SettingsError(
        f"refusing to serve the admin on {host}: set ADMIN_PASSWORD (or ADMIN_VIEWER_PASSWORD) "
        f"or bind {LOOPBACK}"
    )


def serve(host: str, port: int) -> None:
    """Serve the admin, ``/health`` and ``/metrics`` until interrupted."""
    settings = get_settings()
    address = bind_address(host, settings)
    logger.info("admin listening", extra={"host": address, "port": port, "auth": auth_enabled(settings)})
    hosts = security.allowed_hosts(settings, auth_enabled=auth_enabled(settings))
    if address not in (LOOPBACK, "localhost") and not security.non_loopback(hosts):
        logger.warning(
            "admin bound to a public address but answers loopback host names only: set ADMIN_ALLOWED_HOSTS",
            extra={"host": address, "allowed_hosts": list(hosts)},
        )
    secret = settings.admin_session_secret
    uvicorn.run(
        create_app(session_secret=secret.get_secret_value() if secret else None),
        host=address,
        port=port,
        log_level=settings.log_level.lower(),
        server_header=False,
        proxy_headers=False,
    )
