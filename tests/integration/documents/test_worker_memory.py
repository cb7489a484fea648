"""A documents worker process's memory stays flat over many PDF jobs (no per-job growth to recycle away)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.documents.reports_data import seed_reports
from tests.support.helpers import ROOT

pytestmark = pytest.mark.integration

JOBS = 40
WARM_UP = 8

#: Renders JOBS pipeline PDFs in one process as the worker does, printing its RSS (MiB) after each.
RUN_JOBS = """
import json, sys
import app.documents.pdf  # as actors/documents.py does at worker start
from app.documents import reports

def rss_mib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20

samples = []
for index in range(int(sys.argv[1])):
    reports.generate_report(request_id=f"mem-{index:06d}", user_id=int(sys.argv[2]), report="pipeline", fmt="pdf")
    samples.append(rss_mib())
print(json.dumps(samples))
"""


def test_rss_does_not_grow_with_the_number_of_pdf_jobs(docs_env: dict[str, str]) -> None:
    seeded = seed_reports(proposals=3)
    env = {**os.environ, **docs_env, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    proc = subprocess.run(
        [sys.executable, "-c", RUN_JOBS, str(JOBS), str(seeded.user_id)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(samples) == JOBS
    growth = samples[-1] - samples[WARM_UP - 1]
    # A per-job leak of even 0.1 MiB would add 3.2 MiB over these 32 jobs (WeasyPrint's fresh font
    # configuration per document cost 0.25 MiB a job); the allocator's noise is well under 2.5 MiB.
    assert growth < 2.5, samples
