"""Tie a process's life to its parent's: the kernel signals it when the parent dies (Linux ``prctl``).

A worker group is a launcher (``jobs worker``), Dramatiq's main process and its worker processes. Nothing in
Dramatiq stops a child whose parent was SIGKILLed: the orphan keeps consuming, unsupervised. Each process of the
group therefore asks the kernel for a signal when its parent dies (``PR_SET_PDEATHSIG``) and turns it into one
SIGTERM to itself: Dramatiq's main process and its worker processes treat SIGTERM as a graceful stop (running
jobs get the shutdown timeout, prefetched messages go back to the queue at once), which SIGKILL would not give.

Why not have the kernel send SIGTERM directly: it sends the parent-death signal each time the child is
reparented away from an exiting *thread* of its parent, so a parent with several threads (the launcher's HTTP
server, the log watcher of Dramatiq's main process) that is killed outright can send it two or three times, and
Dramatiq takes a second SIGTERM as "kill now". The kernel sends :data:`PARENT_DEATH_SIGNAL` instead, and its
handler raises SIGTERM the first time only.

A parent that dies before the child has armed the signal sends nothing, so :func:`die_with_parent` checks the
parent afterwards and reports whether it is still the expected one. Other platforms have no such call: there the
functions log a warning and the group is not tied.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

logger = logging.getLogger(__name__)

#: ``prctl`` options from <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_SET_CHILD_SUBREAPER = 36

#: The launcher's pid, handed to Dramatiq's main process (which runs :mod:`app.worker_main`) in its environment.
LAUNCHER_PID_ENV = "JOBS_WORKER_LAUNCHER_PID"

#: What the kernel sends when the parent dies; its handler turns the first one into :data:`STOP_SIGNAL`.
#: (Windows has no SIGUSR1, and nothing is armed there.)
PARENT_DEATH_SIGNAL: int = getattr(signal, "SIGUSR1", 0)

#: What a process of the group gets once when its parent dies: Dramatiq's graceful stop.
STOP_SIGNAL = signal.SIGTERM

_stopping = False


def _supported() -> bool:
    return sys.platform.startswith("linux")


def _prctl(option: int, arg: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result = int(libc.prctl(option, arg, 0, 0, 0))
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def _stop_once(_signum: int, _frame: object) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    logger.warning("parent process died; stopping", extra={"action": "parent_died", "pid": os.getpid()})
    os.kill(os.getpid(), STOP_SIGNAL)


def die_with_parent(expected_parent: int) -> bool:
    """Get :data:`STOP_SIGNAL` once when the parent dies; False if the parent is already gone.

    ``expected_parent`` is the pid the parent had before it started this process: if the parent died first,
    this process has been reparented (to init or a subreaper) and the caller must exit on its own. Call it
    from the main thread (it installs a signal handler).
    """
    global _stopping
    _stopping = False
    if _supported():
        signal.signal(PARENT_DEATH_SIGNAL, _stop_once)
        _prctl(PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL)
    else:
        logger.warning(
            "parent-death signal not supported on this platform: this process outlives a killed parent",
            extra={"action": "parent_death_unsupported", "platform": sys.platform},
        )
    return os.getppid() == expected_parent


def parent_death_signal() -> int:
    """The signal armed by :func:`die_with_parent` in this process (0: none, or not Linux)."""
    if not _supported():
        return 0
    value = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    if int(libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return value.value


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants, so that it can wait for them; False where unsupported.

    The launcher of a worker group uses it to outlive its group: when Dramatiq's main process dies, its worker
    processes become the launcher's children, and the launcher exits only once they have stopped.
    """
    if not _supported():
        logger.warning(
            "child subreaper not supported on this platform: orphaned workers are not waited for",
            extra={"action": "subreaper_unsupported", "platform": sys.platform},
        )
        return False
    try:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    except OSError as err:
        # A sandbox may refuse it; the group still dies with its processes, only the launcher does not wait.
        logger.warning(
            "child subreaper refused: orphaned workers are not waited for",
            extra={"action": "subreaper_refused", "errno": err.errno},
        )
        return False
    return True


def child_pids(parent: int) -> list[int]:
    """The pids whose parent is ``parent``, read from /proc (empty where there is no /proc)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == parent:
            found.append(int(entry))
    return found
