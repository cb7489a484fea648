"""The HTML pages: the same reads as the JSON API, rendered with Jinja2 (``templates/admin/``).

Pages only read; the write buttons call the JSON API from ``admin.js`` with the CSRF token from the page.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app import dead_letters
from app.admin import queries
from app.admin.api import worker_out
from app.admin.auth import (
    MAX_CREDENTIAL,
    SESSION_USER,
    LoginThrottled,
    Principal,
    attempt_login,
    auth_enabled,
    csrf_token,
    csrf_valid,
    log_in,
    log_out,
)
from app.admin.deps import MAX_ID, DbSession, DeadLetterSearch, JobSearch, Viewer
from app.constants import QUEUES
from app.db.models import DeadLetter
from app.redis_client import get_broker_redis, get_redis
from app.settings import PROJECT_ROOT

router = APIRouter(include_in_schema=False)
#: Cookie holding the login form's CSRF token (double submit: the form must send the same value).
LOGIN_COOKIE = "jobs_admin_login"
#: Seconds a login form stays usable.
LOGIN_FORM_MAX_AGE_S = 3600
#: Longest ``next`` target kept after login.
MAX_NEXT = 2000
templates = Jinja2Templates(directory=str(PROJECT_ROOT / "templates"))


def _age(seconds: float | None) -> str:
    """``2h 05m`` style: operators compare orders of magnitude, not milliseconds."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


templates.env.filters["age"] = _age
templates.env.filters["when"] = _when


def render(request: Request, principal: Principal, name: str, **context: Any) -> HTMLResponse:
    """A page with what the layout needs: the operator, the nav, and the CSRF token for admin.js."""
    context.update(
        root=root_path(request),
        principal=principal,
        auth_enabled=auth_enabled(),
        csrf_token=csrf_token(request),
        queues=QUEUES,
        page=name.removesuffix(".html"),
    )
    return templates.TemplateResponse(request, f"admin/{name}", context)


def root_path(request: Request) -> str:
    """Where the admin is mounted in a parent ASGI app ("" when served alone): links start with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _redirect(request: Request, target: str) -> RedirectResponse:
    return RedirectResponse(root_path(request) + target, status_code=status.HTTP_303_SEE_OTHER)


def _safe_next(target: str | None) -> str:
    """Only redirect within the admin after login (no open redirect)."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin/queues"


@router.get("/admin")
@router.get("/admin/")
def index(request: Request) -> RedirectResponse:
    return _redirect(request, "/admin/queues")


def _login_page(
    request: Request, next_target: str | None, *, error: str | None = None, status_code: int = 200
) -> Response:
    """The form, with the CSRF token of its cookie (a new one if the browser has none)."""
    token = request.cookies.get(LOGIN_COOKIE) or ""
    fresh = not (16 <= len(token) <= 100)
    if fresh:
        token = secrets.token_urlsafe(32)
    context = {
        "next": _safe_next(next_target),
        "error": error,
        "principal": None,
        "page": "login",
        "root": root_path(request),
        "csrf_token": token,
    }
    response = templates.TemplateResponse(request, "admin/login.html", context, status_code=status_code)
    if fresh:
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=LOGIN_FORM_MAX_AGE_S,
            path=root_path(request) + "/admin/login",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
    return response


@router.get("/admin/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str | None, Query(max_length=MAX_NEXT)] = None) -> Response:
    if not auth_enabled():
        return _redirect(request, _safe_next(next))
    return _login_page(request, next)


@router.post("/admin/login", response_class=HTMLResponse)
def login(
    request: Request,
    user: Annotated[str, Form(max_length=MAX_CREDENTIAL)],
    password: Annotated[str, Form(max_length=MAX_CREDENTIAL)],
    form_token: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    next: Annotated[str, Form(max_length=MAX_NEXT)] = "/admin/queues",
) -> Response:
    """Check the form's CSRF token, then the password behind the throttle; a login gets a new session."""
    expected = request.cookies.get(LOGIN_COOKIE) or ""
    if not expected or not hmac.compare_digest(form_token.encode(), expected.encode()):
        return _login_page(
            request, next, error="The login form expired; please log in again.", status_code=403
        )
    try:
        principal = attempt_login(request, user, password)
    except LoginThrottled as err:
        page = _login_page(
            request,
            next,
            error=f"Too many failed logins. Try again in {err.retry_after} seconds.",
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        page.headers["Retry-After"] = str(err.retry_after)
        return page
    if principal is None:
        return _login_page(
            request, next, error="Wrong user or password.", status_code=status.HTTP_401_UNAUTHORIZED
        )
    log_in(request, principal)
    response = _redirect(request, _safe_next(next))
    response.delete_cookie(LOGIN_COOKIE, path=root_path(request) + "/admin/login")
    return response


@router.post("/admin/logout")
def logout(
    request: Request, form_token: Annotated[str, Form(alias="csrf_token", max_length=200)] = ""
) -> RedirectResponse:
    """End the session (deleted in Redis); the form must carry the session's CSRF token."""
    if request.session.get(SESSION_USER) is not None and not csrf_valid(request, form_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    log_out(request)
    return _redirect(request, "/admin/login")


@router.get("/admin/queues", response_class=HTMLResponse)
def queues_page(request: Request, principal: Viewer, session: DbSession) -> HTMLResponse:
    rows = queries.queue_overview(session, get_redis(), QUEUES, broker_client=get_broker_redis())
    return render(request, principal, "queues.html", rows=rows)


@router.get("/admin/queues/{queue}", response_class=HTMLResponse)
def queue_page(queue: str, request: Request, principal: Viewer, session: DbSession) -> HTMLResponse:
    if queue not in QUEUES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown queue {queue!r}")
    row = queries.queue_overview(session, get_redis(), [queue], broker_client=get_broker_redis())[0]
    groups = queries.dead_letter_groups(session, dead_letters.DeadLetterFilter(queue=queue), limit=20)
    jobs = queries.search_jobs(session, queries.JobQuery(queue=queue, limit=25))
    progress = queries.document_progress(session, jobs)
    return render(request, principal, "queue.html", row=row, groups=groups, jobs=jobs, progress=progress)


@router.get("/admin/dead-letters", response_class=HTMLResponse)
def dead_letters_page(
    request: Request,
    principal: Viewer,
    session: DbSession,
    where: DeadLetterSearch,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 100,
) -> HTMLResponse:
    return render(
        request,
        principal,
        "dead_letters.html",
        groups=queries.dead_letter_groups(session, where, limit=limit),
        items=dead_letters.list_dead_letters(session, where, limit=limit),
        filters={
            "queue": where.queue or "",
            "actor": where.actor or "",
            "status": where.status or "all",
            "fingerprint": where.fingerprint or "",
        },
    )


@router.get("/admin/dead-letters/{dead_letter_id}", response_class=HTMLResponse)
def dead_letter_page(
    dead_letter_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    principal: Viewer,
    session: DbSession,
) -> HTMLResponse:
    row = session.get(DeadLetter, dead_letter_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such dead letter")
    return render(request, principal, "dead_letter.html", row=row, detail=dead_letters.describe(row))


@router.get("/admin/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, principal: Viewer, session: DbSession, query: JobSearch) -> HTMLResponse:
    jobs = queries.search_jobs(session, query)
    progress = queries.document_progress(session, jobs)
    return render(request, principal, "jobs.html", jobs=jobs, query=query, progress=progress)


@router.get("/admin/workers", response_class=HTMLResponse)
def workers_page(request: Request, principal: Viewer) -> HTMLResponse:
    workers = [worker_out(w) for w in queries.list_workers(get_redis())]
    return render(request, principal, "workers.html", workers=workers)
