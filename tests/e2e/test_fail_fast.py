"""A process refuses to start on settings that cannot work: one line naming the variable, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

pytestmark = pytest.mark.e2e

#: SendGrid chosen without its key: every email would be dead-lettered one at a time.
NO_KEY = {"EMAIL_BACKEND": "sendgrid", "EMAIL_FROM": "Jobs <noreply@example.com>"}
#: Variables of the host environment that would change what these tests check.
CLEARED = ("EMAIL_BACKEND", "EMAIL_FROM", "SENDGRID_API_KEY")


def jobs(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**base, "DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "started"),
    [
        (("worker", "email", "--http-port", "0"), "worker email:"),  # the banner, before the fork
        (("dev", "--users", "0"), "Admin:"),  # printed after migrating, before the Procfile starts
    ],
)
def test_sendgrid_without_a_key_stops_the_process_before_it_starts_anything(
    tmp_path: Path, args: tuple[str, ...], started: str
) -> None:
    # Given EMAIL_BACKEND=sendgrid and no SENDGRID_API_KEY
    # When the process is started
    result = jobs(tmp_path, NO_KEY, *args)
    # Then it exits 2 with one line naming the variable, and started nothing (no banner, no database file)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jobs: invalid setting SENDGRID_API_KEY: ")
    assert started not in result.stdout + result.stderr
    assert not (tmp_path / "jobs.db").exists()


def test_a_secret_of_a_refused_combination_is_not_printed(tmp_path: Path) -> None:
    # Given a key but the default sender, which SendGrid refuses
    result = jobs(
        tmp_path, {"EMAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": "SG.do-not-print"}, "worker", "email"
    )
    assert result.returncode == 2
    assert "EMAIL_FROM" in result.stderr and "SG.do-not-print" not in result.stderr
