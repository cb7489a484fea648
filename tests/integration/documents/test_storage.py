"""A retried or killed document job leaves no half file and no second row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

import app.documents
from app.db.models import Document
from app.db.session import session_scope
from app.documents import storage
from app.errors import PermanentError, RetryableError
from tests.support.helpers import ROOT

pytestmark = pytest.mark.integration

#: Writes half a file under the storage context manager, then kills its own process (SIGKILL: no cleanup).
KILLED_MIDWAY = """
import os, signal
from app.documents import storage
with storage.produce("killed-0001", kind="report", fmt="csv", user_id=None) as out:
    with out.temp_path.open("w") as handle:
        handle.write("half,a,file\\n")
        handle.flush()
    out.progress(50)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _rows(request_id: str) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).where(Document.request_id == request_id)) or 0)


def _partials(env: dict[str, str]) -> list[Path]:
    directory = Path(env["STORAGE_DIR"]) / storage.PARTIAL_DIR
    return sorted(directory.iterdir()) if directory.is_dir() else []


def _write(out: storage.DocumentOutput, text: str) -> None:
    out.temp_path.write_text(text, encoding="utf-8")


def test_a_retried_attempt_reuses_the_row_and_leaves_one_complete_file(docs_env: dict[str, str]) -> None:
    with pytest.raises(RetryableError), storage.produce("retry-0001", kind="export", fmt="csv") as out:
        _write(out, "partial")
        raise RetryableError("database went away")
    status = app.documents.status("retry-0001")
    assert status is not None and status.status == "retrying" and "database went away" in (status.error or "")
    assert _partials(docs_env) == [] and app.documents.file_path("retry-0001") is None

    with storage.produce("retry-0001", kind="export", fmt="csv") as out:
        _write(out, "a,b\r\n1,2\r\n")
        out.row_count = 1
    status = app.documents.status("retry-0001")
    assert status is not None and status.ready and status.attempts == 2 and status.error is None
    assert app.documents.read_bytes("retry-0001") == b"a,b\r\n1,2\r\n"
    assert _rows("retry-0001") == 1 and _partials(docs_env) == []


def test_a_permanent_failure_is_final_and_writes_no_file(docs_env: dict[str, str]) -> None:
    with pytest.raises(PermanentError), storage.produce("perm-0001", kind="report", fmt="pdf") as out:
        _write(out, "%PDF-half")
        raise PermanentError("user 7 does not exist")
    status = app.documents.status("perm-0001")
    assert status is not None and status.status == "failed" and status.finished_at is not None
    assert not (Path(docs_env["STORAGE_DIR"]) / "reports" / "perm-0001.pdf").exists()
    assert _partials(docs_env) == []


def test_a_killed_attempt_leaves_no_half_file_and_the_next_one_takes_the_row_over(
    docs_env: dict[str, str],
) -> None:
    env = {**os.environ, **docs_env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLED_MIDWAY], env=env, cwd=ROOT, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    status = app.documents.status("killed-0001")
    assert status is not None and status.status == "running"
    assert app.documents.file_path("killed-0001") is None  # nothing under the final name
    assert len(_partials(docs_env)) == 1  # the half file is only under .partial

    with storage.produce("killed-0001", kind="report", fmt="csv") as out:
        _write(out, "complete,file\r\n")
    assert _partials(docs_env) == []  # the next attempt removed its predecessor's leftover
    assert app.documents.read_bytes("killed-0001") == b"complete,file\r\n"
    status = app.documents.status("killed-0001")
    assert status is not None and status.ready and status.attempts == 2
    assert _rows("killed-0001") == 1


def test_a_redelivered_finished_request_is_not_redone(docs_env: dict[str, str]) -> None:
    from app.documents import reports
    from tests.integration.documents.reports_data import seed_reports

    seeded = seed_reports(proposals=2)
    reports.generate_report(request_id="done-00001", user_id=seeded.user_id, report="pipeline", fmt="csv")
    first = app.documents.status("done-00001")
    reports.generate_report(request_id="done-00001", user_id=seeded.user_id, report="pipeline", fmt="csv")
    again = app.documents.status("done-00001")
    assert first is not None and again is not None
    assert (again.attempts, again.sha256, again.finished_at) == (1, first.sha256, first.finished_at)


def test_paths_cannot_leave_the_storage_directory(docs_env: dict[str, str]) -> None:
    for bad in ("../etc/passwd", "/etc/passwd", "reports/../../x", ".partial/x", ""):
        with pytest.raises(PermanentError):
            storage.resolve(bad)
    with pytest.raises(PermanentError):
        storage.default_path("report", "../../evil", "pdf")


def _written(status: str) -> float:
    labels = {"queue": "documents", "kind": "export", "format": "csv", "status": status}
    return REGISTRY.get_sample_value("worker_documents_total", labels) or 0.0


def test_outcomes_are_counted_and_old_partials_swept(docs_env: dict[str, str]) -> None:
    partial_dir = Path(docs_env["STORAGE_DIR"]) / storage.PARTIAL_DIR
    partial_dir.mkdir(parents=True)
    stale, fresh = partial_dir / "gone-00001.0000.csv", partial_dir / "busy-00001.0000.csv"
    for path in (stale, fresh):
        path.write_text("left by a killed attempt")
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))
    ready, retrying = _written("ready"), _written("retrying")

    with storage.produce("count-00001", kind="export", fmt="csv") as out:
        _write(out, "x\r\n")
    with pytest.raises(RetryableError), storage.produce("count-00002", kind="export", fmt="csv"):
        raise RetryableError("later")

    assert (_written("ready"), _written("retrying")) == (ready + 1, retrying + 1)
    assert not stale.exists() and fresh.exists()  # another request's recent partial is left alone


def test_two_attempts_at_once_leave_the_newer_complete_file_and_a_ready_row(docs_env: dict[str, str]) -> None:
    with pytest.raises(RetryableError, match="temporary file is gone"):  # noqa: SIM117  (the nesting is the race)
        with storage.produce("race-00001", kind="export", fmt="csv") as first:
            _write(first, "first,attempt\r\n")
            # A redelivered copy starts while the first still runs, and finishes first
            with storage.produce("race-00001", kind="export", fmt="csv") as second:
                _write(second, "second,attempt\r\n")
    status = app.documents.status("race-00001")
    assert status is not None and status.ready and status.attempts == 2 and status.error is None
    assert app.documents.read_bytes("race-00001") == b"second,attempt\r\n"
    assert storage.completed("race-00001") is not None  # the first's retry will find the request done
    assert _rows("race-00001") == 1 and _partials(docs_env) == []
