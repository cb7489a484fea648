"""The parent-death signal of a worker group's processes, checked in a child process (it installs a handler)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.helpers import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")


CHILD = """
import os, signal
from app.parent_death import PARENT_DEATH_SIGNAL, die_with_parent, parent_death_signal

stops = []
signal.signal(signal.SIGTERM, lambda signum, frame: stops.append(signum))
print("wrong parent:", die_with_parent(os.getppid() + 1))
print("right parent:", die_with_parent(os.getppid()))
print("armed:", parent_death_signal() == PARENT_DEATH_SIGNAL)
# A parent with several threads killed outright: the kernel signals once per exiting thread
for _ in range(3):
    os.kill(os.getpid(), PARENT_DEATH_SIGNAL)
print("stops:", len(stops))
"""


def test_parent_death_is_armed_checked_and_turned_into_one_sigterm() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "wrong parent: False",
        "right parent: True",
        "armed: True",
        "stops: 1",
    ]
