"""``create_app()``: the admin web app, served by ``jobs admin`` or mounted inside another ASGI app."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import quote

import redis
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp

from app.admin import api, apidocs, health, pages, security
from app.admin.auth import LoginThrottled, NotAuthenticated, auth_enabled, session_still_valid
from app.admin.sessions import SessionMiddleware, SessionStore, Timeouts
from app.redis_client import get_redis
from app.scheduler import admin as scheduler_admin
from app.settings import PROJECT_ROOT, get_settings
from app.sync import admin as sync_admin

logger = logging.getLogger(__name__)


class AdminApp(FastAPI):
    """FastAPI with the layers of :mod:`app.admin.security` outside everything, Starlette's error middleware
    included, so that refusals and 500s carry the security headers too."""

    outer: tuple[security.Network, ...] = ()
    allowed_hosts: tuple[str, ...] = security.LOOPBACK_HOSTS

    def build_middleware_stack(self) -> ASGIApp:
        inner = security.HostGuard(super().build_middleware_stack(), self.allowed_hosts)
        return security.ForwardedHeaders(security.SecurityHeaders(inner), self.outer)


def create_app(*, session_secret: str | None = None) -> FastAPI:
    """The admin app. ``session_secret`` signs the session cookie; by default a random one per process
    (logins then end when the process restarts). Sessions live in Redis (:mod:`app.admin.sessions`); host
    allow-list, trusted proxies and timeouts come from the settings, read now."""
    settings = get_settings()
    app = AdminApp(
        title="jobs admin",
        description="Queues, dead letters, job history and workers of the jobs platform.",
        version="1",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.outer = security.trusted_networks(settings)
    app.allowed_hosts = security.allowed_hosts(settings, auth_enabled=auth_enabled(settings))
    app.add_middleware(
        SessionMiddleware,
        store=SessionStore(
            get_redis, Timeouts(settings.admin_session_idle_s, settings.admin_session_max_age_s)
        ),
        secret=session_secret or secrets.token_urlsafe(32),
        validate=session_still_valid,
    )
    app.include_router(health.router)
    app.include_router(apidocs.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(scheduler_admin.router)
    app.include_router(sync_admin.router)
    static = StaticFiles(directory=PROJECT_ROOT / "templates" / "admin" / "static")
    app.mount("/admin/static", static, name="admin-static")
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(LoginThrottled, _throttled)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(redis.RedisError, _unavailable)
    app.add_exception_handler(SQLAlchemyError, _unavailable)
    return app


async def _not_authenticated(request: Request, exc: Exception) -> Response:
    """The API asks for HTTP Basic; a page sends the browser to the login form and back."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    path = request.url.path.removeprefix(root)
    if path.startswith("/admin/api/") and path != apidocs.DOCS_PATH:
        return JSONResponse(
            {"detail": str(exc)},
            status_code=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Basic realm="jobs admin"'},
        )
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{root}/admin/login?next={quote(target)}", status_code=status.HTTP_303_SEE_OTHER)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """Redis or the database is down: say which, as 503, rather than a bare 500."""
    what = "Redis" if isinstance(exc, redis.RedisError) else "the database"
    logger.warning("admin request failed: dependency unavailable", extra={"error": type(exc).__name__})
    return JSONResponse(
        {"detail": f"{what} is unavailable ({type(exc).__name__})"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


async def _throttled(request: Request, exc: Exception) -> Response:
    """Too many failed logins: 429 with how long to wait."""
    wait = exc.retry_after if isinstance(exc, LoginThrottled) else 60
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(wait)})


async def _invalid(request: Request, exc: Exception) -> Response:
    """422 naming each bad field, without echoing the input: a hostile value (``1e400``, ``NaN``, markup)
    cannot break the JSON of the answer or be reflected."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {
            "loc": [str(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type")),
        }
        for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug: 500 without details (the server logs the traceback), under the security headers (AdminApp)."""
    return JSONResponse({"detail": "internal error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
