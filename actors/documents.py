"""Actors of the ``documents`` queue. The documents issue adds them; the worker group already runs and idles."""

from __future__ import annotations

import app.broker  # noqa: F401  (binds actors to the platform broker before any is declared)
