"""``jobs dev`` (what ``make run`` starts): every process up on the embedded defaults, an email goes out."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.support.worker import ROOT, wait_for

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.timeout(120)
def test_jobs_dev_runs_every_process_and_delivers_an_email(redis_client: redis.Redis, tmp_path: Path) -> None:
    # Given a fresh embedded set-up: SQLite in a temporary directory, the file email backend
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
        "EMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "STORAGE_DIR": str(tmp_path / "storage"),
        "ADMIN_PORT": str(port),
        "WORKER_HTTP_PORT": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dev", "--users", "5"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        # When it is up: the admin answers and a worker of each queue heartbeats
        def ready() -> bool:
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                queues = get_json(f"http://127.0.0.1:{port}/admin/api/queues")
            except OSError:
                return False
            assert isinstance(queues, list)
            return all(q["workers"] >= 1 for q in queues)

        wait_for(ready, timeout=60, interval=0.5, what="admin and three worker groups")
        output = (tmp_path / "dev.log").read_text()
        assert f"http://127.0.0.1:{port}/admin/queues" in output
        assert "seeding 5 demo users" in output

        # Then a welcome email to a demo user is written to the outbox
        enqueue = subprocess.run(
            [sys.executable, "-m", "app.cli", "enqueue", "send_welcome_email", "--arg", "user_id=1"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert enqueue.returncode == 0, enqueue.stderr
        emails = wait_for(lambda: list((tmp_path / "outbox").glob("*.eml")), timeout=30, what="an .eml file")
        assert isinstance(emails, list) and len(emails) == 1
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(40)
        log.close()
    assert dev.returncode is not None
