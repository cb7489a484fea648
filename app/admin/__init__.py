"""The admin web app (docs/admin.md): queues, dead letters, jobs and workers, plus health."""

from __future__ import annotations

from app.admin.app import create_app

__all__ = ["create_app"]
