"""The API's OpenAPI document and its Swagger UI page, both behind login.

Swagger UI is vendored (``templates/admin/static/swagger-ui/``, version in its ``VERSION`` file) and started by
a script file of ours, so the page runs under the same CSP as every other page and works offline: no CDN, no
inline script.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from app.admin.auth import csrf_token
from app.admin.deps import Viewer
from app.admin.pages import root_path, templates

#: The Swagger UI page (a page: without a login it redirects to the login form).
DOCS_PATH = "/admin/api/docs"
OPENAPI_PATH = "/admin/api/openapi.json"

router = APIRouter(include_in_schema=False)


def _openapi(request: Request) -> dict[str, Any]:
    """The app's OpenAPI document, built once (what FastAPI's own ``openapi_url`` would serve)."""
    app = request.app
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
    schema: dict[str, Any] = app.openapi_schema
    return schema


@router.get(OPENAPI_PATH)
def openapi_document(request: Request, _: Viewer) -> JSONResponse:
    return JSONResponse(_openapi(request))


@router.get(DOCS_PATH, response_class=HTMLResponse)
def api_docs(request: Request, _: Viewer) -> HTMLResponse:
    context = {"root": root_path(request), "csrf_token": csrf_token(request)}
    return templates.TemplateResponse(request, "admin/api_docs.html", context)
