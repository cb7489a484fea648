"""The web app's URLs that emails link to, built from ``PUBLIC_BASE_URL`` in one place.

Unsubscribing goes through the web app's notification settings page (behind its login), one link per kind;
``List-Unsubscribe`` carries the same URL so that mail clients offer it too.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from app.settings import get_settings


def _url(path: str, **query: str) -> str:
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")


def dashboard() -> str:
    return _url("/dashboard")


def opportunity(notice_id: str) -> str:
    return _url(f"/opportunities/{quote(notice_id, safe='')}")


def proposal(proposal_id: int) -> str:
    return _url(f"/proposals/{proposal_id}")


def saved_opportunities() -> str:
    return _url("/opportunities/saved")


def unsubscribe(kind: str) -> str:
    return _url("/account/notifications", unsubscribe=kind)


def list_unsubscribe_header(kind: str) -> dict[str, str]:
    """The ``List-Unsubscribe`` header of ``kind`` (RFC 2369)."""
    return {"List-Unsubscribe": f"<{unsubscribe(kind)}>"}
