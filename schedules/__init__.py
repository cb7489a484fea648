"""The schedule table as code: what fires when, which actor it emits, and with which arguments.

Names are public (operators pause and run them by name, ``SCHEDULES_FILE`` overrides them by name, dashboards
label fires with them). The scheduler sidecar (``app/scheduler/``, ``jobs scheduler``) fires the table.
"""

from __future__ import annotations

from schedules.table import SCHEDULES, Schedule, by_name

__all__ = ["SCHEDULES", "Schedule", "by_name"]
