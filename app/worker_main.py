"""Dramatiq's main process of a ``jobs worker`` group: ``python -m app.worker_main ARGS`` = ``dramatiq ARGS``.

It first asks for SIGTERM when the launcher dies (:mod:`app.parent_death`), so that a launcher killed outright
(SIGKILL, the OOM killer, a supervisor that kills only the main pid) stops its Dramatiq processes gracefully
instead of leaving them consuming; the launcher's pid arrives in :data:`~app.parent_death.LAUNCHER_PID_ENV`.
Then it runs Dramatiq's CLI as ``python -m dramatiq`` would (``sys.argv[0]`` included, so that a SIGHUP reload
re-executes ``python -m dramatiq``; the parent-death signal survives that exec).
"""

from __future__ import annotations

import logging
import os
import runpy
import sys

from app.parent_death import LAUNCHER_PID_ENV, die_with_parent

logger = logging.getLogger(__name__)

#: Exit code when the launcher was gone before this process could tie itself to it (Dramatiq's RET_KILLED).
LAUNCHER_GONE_EXIT = 1


def tie_to_launcher() -> None:
    """Exit at once if the launcher died before the parent-death signal was armed."""
    launcher = os.environ.pop(LAUNCHER_PID_ENV, None)
    if launcher is None:
        return
    if not die_with_parent(int(launcher)):
        logger.warning(
            "launcher gone before the worker group started; exiting",
            extra={"action": "launcher_gone", "launcher_pid": int(launcher)},
        )
        sys.exit(LAUNCHER_GONE_EXIT)


if __name__ == "__main__":
    tie_to_launcher()
    runpy.run_module("dramatiq", run_name="__main__", alter_sys=True)
