"""The admin web app (docs/admin.md): queues, dead letters, jobs and workers, plus health.

``create_app`` is imported on first use, so ``jobs admin sessions`` (app.admin.commands) does not load the web
stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.admin.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from app.admin.app import create_app

        return create_app
    raise AttributeError(name)
