"""``create_app()``: the admin web app, served by ``jobs admin`` or mounted inside another ASGI app."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import quote

import redis
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.admin import api, health, pages
from app.admin.auth import NotAuthenticated
from app.scheduler import admin as scheduler_admin
from app.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

#: Name of the signed session cookie (login and CSRF token).
SESSION_COOKIE = "jobs_admin_session"
#: Seconds a login lasts.
SESSION_MAX_AGE_S = 12 * 3600
#: Sent with every response: the admin is never framed, sniffed or given third-party scripts.
SECURITY_HEADERS = {
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"content-security-policy": b"default-src 'self'; frame-ancestors 'none'",
}


#: FastAPI's Swagger UI page (exempt from the CSP).
DOCS_PATH = "/admin/api/docs"


def create_app(*, session_secret: str | None = None) -> FastAPI:
    """The admin app. ``session_secret`` signs the session cookie; by default a random one per process
    (logins then end when the process restarts, which is fine for one admin process)."""
    app = FastAPI(
        title="jobs admin",
        description="Queues, dead letters, job history and workers of the jobs platform.",
        version="1",
        openapi_url="/admin/api/openapi.json",
        docs_url=DOCS_PATH,
        redoc_url=None,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret or secrets.token_urlsafe(32),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="strict",
        path="/",
    )
    app.add_middleware(SecurityHeaders)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(scheduler_admin.router)
    static = StaticFiles(directory=PROJECT_ROOT / "templates" / "admin" / "static")
    app.mount("/admin/static", static, name="admin-static")
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(redis.RedisError, _unavailable)
    app.add_exception_handler(SQLAlchemyError, _unavailable)
    return app


async def _not_authenticated(request: Request, exc: Exception) -> Response:
    """The API asks for HTTP Basic; a page sends the browser to the login form and back."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    path = request.url.path.removeprefix(root)
    if path.startswith("/admin/api/"):
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


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                if scope["path"].endswith(DOCS_PATH):  # Swagger UI needs its CDN scripts and an inline script
                    present.add(b"content-security-policy")
                extra = [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
