"""Prometheus metrics of real worker processes: what the multiprocess files hold, and what ``jobs worker`` serves.

Every value is read the way Prometheus would get it: aggregated over the processes' multiprocess files, or
scraped over HTTP from the worker group's parent and parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from app import enqueue
from tests.support.helpers import ROOT, TEST_QUEUE, free_port, send_test_message, wait_for
from tests.support.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.e2e


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample as ``(name, labels) -> value``; lookups by a subset of labels go through :func:`value`."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def value(
    all_samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum over samples named ``name`` whose labels include ``labels`` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in all_samples.items() if n == name and wanted <= lbls)


def test_multiprocess_files_count_each_outcome_once(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a worker (2 processes) writing Prometheus multiprocess files into a directory of ours
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    worker = WorkerProcess(
        {**platform_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        ["tests.support.actors", "tests.support.observability_actors"],
        [TEST_QUEUE],
        log_path=tmp_path / "worker.log",
        processes=2,
        threads=2,
        shutdown_timeout_ms=5_000,
    )
    try:
        worker.wait_ready(redis_client)
        # When it runs 5 successes, 1 permanent failure, and 1 job that fails 3 times (max_retries=2)
        for _ in range(5):
            send_test_message("noop")
        send_test_message("always_permanent", tag="metrics-permanent")
        send_test_message("fast_retryable")

        def aggregated() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(metrics_dir))
            found = samples(registry)
            return found if value(found, "worker_dead_letters_total") >= 2 else None

        found = wait_for(aggregated, timeout=30, what="two dead letters counted")
        assert isinstance(found, dict)
    finally:
        assert worker.stop() == 0
    # Then the aggregate over both processes counts each attempt once, by outcome
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    found = samples(registry)
    processed = "worker_jobs_processed_total"
    assert value(found, processed, queue=TEST_QUEUE, actor="noop", status="succeeded") == 5
    assert value(found, processed, actor="always_permanent", status="dead") == 1
    assert value(found, processed, actor="always_permanent", status="retrying") == 0
    assert value(found, processed, actor="fast_retryable", status="retrying") == 2
    assert value(found, processed, actor="fast_retryable", status="dead") == 1
    # And retries and dead letters once each (Dramatiq's own Prometheus middleware counts retries twice)
    assert value(found, "worker_job_retries_total", actor="fast_retryable") == 2
    assert value(found, "worker_job_retries_total", actor="always_permanent") == 0
    assert value(found, "worker_dead_letters_total", queue=TEST_QUEUE, actor="fast_retryable") == 1
    assert value(found, "worker_dead_letters_total", queue=TEST_QUEUE, actor="always_permanent") == 1
    # And the duration histogram saw every attempt: 5 + 1 + 3, each well under 5 s
    assert value(found, "worker_job_duration_seconds_count", queue=TEST_QUEUE) == 9
    assert value(found, "worker_job_duration_seconds_bucket", actor="noop", le="5.0") == 5
    assert 0 < value(found, "worker_job_duration_seconds_sum", actor="noop") < 5
    # And nothing is left counted as running
    assert value(found, "worker_active_jobs") == 0


@pytest.fixture
def email_worker(
    platform_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> Iterator[tuple[WorkerProcess, int]]:
    """``jobs worker email`` as deployed: a parent serving /metrics and /health over 2 Dramatiq processes."""
    port = free_port()
    command = [
        sys.executable, "-m", "app.cli", "worker", "email",
        "--http-port", str(port), "--processes", "2", "--threads", "2", "--shutdown-timeout", "5",
    ]  # fmt: skip
    log_path = tmp_path / "jobs-worker.log"
    with running_worker(platform_env, redis_client, log_path, queues=["email"], command=command) as process:
        yield process, port


def health_command(env: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "health", "worker", "email"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    return result.returncode


def test_jobs_worker_serves_metrics_and_health_and_stops_cleanly_on_sigterm(
    email_worker: tuple[WorkerProcess, int], platform_env: dict[str, str]
) -> None:
    worker, port = email_worker
    base = f"http://127.0.0.1:{port}"
    # Given a delayed message on the email queue (the worker holds it until its eta)
    enqueue.send("send_welcome_email", user_id=1, delay=600)

    # When Prometheus scrapes the group
    def scrape() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        response = httpx.get(f"{base}/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        families = {
            family.name: [(s.labels, s.value) for s in family.samples]
            for family in text_string_to_metric_families(response.text)
        }
        delayed = [
            v for labels, v in families.get("worker_queue_size", []) if labels.get("state") == "delayed"
        ]
        return families if delayed and delayed[0] >= 1 else None

    families = wait_for(scrape, timeout=15, what="the delayed message in worker_queue_size")
    assert isinstance(families, dict)
    # Then the queue gauges of the email queue are there, one sample per state, read from Redis
    sizes = {labels["state"]: v for labels, v in families["worker_queue_size"] if labels["queue"] == "email"}
    assert set(sizes) == {"ready", "delayed", "in_progress", "dead"}
    assert sizes["delayed"] == 1 and sizes["dead"] == 0
    ages = [(labels, v) for labels, v in families["worker_queue_oldest_message_age_seconds"]]
    assert [labels["queue"] for labels, _ in ages] == ["email"]
    assert ages[0][1] >= 0
    # And liveness says yes over HTTP and as an exit code
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    assert health_command(platform_env) == 0
    assert httpx.get(f"{base}/nope", timeout=10).status_code == 404

    # When the group is told to stop
    code = worker.stop(timeout=30)

    # Then it exits 0, stops serving, and the probe fails
    assert code == 0, worker.log_path.read_text()[-3000:]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=2)
    assert health_command(platform_env) == 1
