"""``jobs dev`` (what ``make run`` starts): every process up on the embedded defaults, an email goes out."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.support.helpers import ROOT, free_port, wait_for

pytestmark = pytest.mark.e2e

#: What each process of the Procfile imports before it serves (a worker group: the broker and its queue's actors).
PROCFILE_MODULES = (
    "app.cli",
    "app.worker_runner",
    "app.broker",
    "actors.email",
    "actors.documents",
    "actors.sync",
    "app.outbox",
    "app.admin.server",
    "app.scheduler.process",
)


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
        "SCHEDULER_HTTP_PORT": "0",
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
        # (only the welcome email counts: the scheduler may also catch up on this hour's daily reminders)
        welcome = "*-welcome_1.eml"
        emails = wait_for(
            lambda: list((tmp_path / "outbox").glob(welcome)), timeout=30, what="a welcome .eml"
        )
        assert isinstance(emails, list) and len(emails) == 1
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(40)
        log.close()
    # And a SIGTERM stops it: every worker group finishes gracefully (exit 0), and no process of it is left.
    # (uvicorn re-raises the SIGTERM once the admin has shut down, so jobs dev itself reports 128 + 15.)
    output = (tmp_path / "dev.log").read_text()
    assert dev.returncode in (0, 128 + signal.SIGTERM), output[-3000:]
    stopped = dict(re.findall(r"\| (worker-\w+) stopped \(rc=(-?\d+)\)", output))
    assert stopped == {"worker-email": "0", "worker-documents": "0", "worker-sync": "0"}, output[-3000:]
    wait_for(lambda: not group_alive(dev.pid), timeout=30, what="every process of jobs dev to exit")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def make_dry_run(target: str) -> str:
    """The commands ``make TARGET`` would run (``make -n``), prerequisites included, none executed."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout


def test_make_run_starts_only_redis_and_installs_no_test_tools() -> None:
    # When make run is planned on a fresh checkout (-B: as if nothing were installed yet)
    commands = make_dry_run("run")
    # Then it starts Redis and the platform with WeasyPrint's libraries (the documents worker renders PDFs),
    # and neither a browser, PDF tools, PostgreSQL nor the test extras
    assert "bash .ci/redis" in commands and "jobs dev" in commands and "libpango" in commands
    for unwanted in ("chromium", "poppler", "postgres", ".ci/services", "[test]"):
        assert unwanted not in commands, unwanted


def test_make_test_installs_and_starts_what_the_suite_needs() -> None:
    commands = make_dry_run("test")
    assert "chromium" in commands and "bash .ci/services" in commands and "'.[test]'" in commands


def test_only_the_documents_worker_imports_weasyprint() -> None:
    """The documents worker loads WeasyPrint once at start (``make run-deps`` installs its libraries); no other
    process pays for it, and the web app's enqueue helpers and ``app.documents`` read API stay without it."""
    others = [name for name in PROCFILE_MODULES if name != "actors.documents"]
    code = (
        f"import sys\nfor name in {[*others, 'app.documents', 'app.enqueue']!r}: __import__(name)\n"
        "print(sorted(name for name in sys.modules if name.partition('.')[0] == 'weasyprint'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "REDIS_URL": REDIS_URL}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_ci_redis_starts_a_redis_when_none_answers_and_only_once() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (the script would install it with apt)")
    # Given nothing listening on a free port
    port = free_port()
    env = {**os.environ, "REDIS_PORT": str(port)}
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        # When .ci/redis runs twice
        first = subprocess.run(
            ["bash", ".ci/redis"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        again = subprocess.run(
            ["bash", ".ci/redis"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        # Then the first started a Redis that answers, the second found it and started nothing
        assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
        assert "starting Redis" in first.stdout and "starting" not in again.stdout
        assert client.ping()
    finally:
        client.shutdown(nosave=True)  # redis-py treats the dropped connection (or none at all) as done
        client.close()
        pid_file = ROOT / "var" / "redis" / f"{port}.pid"
        wait_for(lambda: not pid_file.exists(), timeout=10, what="the test's Redis to exit")
        (ROOT / "var" / "redis" / f"{port}.log").unlink(missing_ok=True)
