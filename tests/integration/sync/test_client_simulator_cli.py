"""The simulator standalone (what ``jobs dev`` runs when no SAM.gov key is set), driven over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from app.sync.client import SamGovClient
from app.testing.samgov_server import DEV_API_KEY, dev_process
from tests.support.helpers import ROOT

pytestmark = pytest.mark.integration


def post(url: str, body: dict[str, object]) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def test_jobs_dev_points_the_platform_at_a_simulator_serving_recent_notices() -> None:
    # Given jobs dev's environment without a SAM.gov key
    env = {"PATH": "/usr/bin"}
    command = dev_process(env)
    assert command is not None and env["SAM_GOV_API_KEY"] == DEV_API_KEY
    assert dev_process({"SAM_GOV_API_KEY": "mine"}) is None
    port = env["SAM_GOV_BASE_URL"].rsplit(":", 1)[1]
    # When the standalone simulator runs (a small data set, ending today)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.testing.samgov_server",
            "--port",
            port,
            "--size",
            "300",
            "--end",
            "today",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert env["SAM_GOV_BASE_URL"] in process.stdout.readline()
        base = env["SAM_GOV_BASE_URL"]
        post(f"{base}/_simulator/config", {"offset_mode": "page"})
        post(f"{base}/_simulator/faults", {"kind": "status", "status": 503, "api": "opportunities"})
        today = datetime.now(UTC).date()
        with SamGovClient(base_url=base, api_key=DEV_API_KEY, quota=None, backoff_s=0.01) as client:
            pages = list(
                client.iter_opportunity_pages(
                    posted_from=today - timedelta(days=119), posted_to=today, purpose="on_demand", limit=100
                )
            )
        # Then the client gets all 300 notices, through the scripted 503 and the page offsets
        assert sum(len(p.records) for p in pages) == 300
        with urllib.request.urlopen(f"{base}/_simulator/stats", timeout=10) as response:
            stats = json.loads(response.read())
        assert stats["statuses"] == {"503": 1, "200": 3} and stats["offset_mode"] == "page"
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_the_sync_worker_refuses_to_start_on_the_real_api_without_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAM_GOV_")}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "sync", "-p", "1", "-t", "1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "jobs: invalid setting SAM_GOV_API_KEY: is required when SAM_GOV_BASE_URL is the real API "
        "(https://api.sam.gov); `jobs dev` points it at the local simulator instead"
    ]
