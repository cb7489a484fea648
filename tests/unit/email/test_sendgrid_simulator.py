"""The simulator over real HTTP: statuses, headers, recording, scripted faults, counts, latency, concurrency,
standalone mode."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from app.testing.sendgrid_server import Fault, Latency, SendGridSimulator, to_recipient
from tests.unit.email.conftest import API_KEY

BODY: dict[str, Any] = {
    "personalizations": [{"to": [{"email": "a@example.com"}], "custom_args": {"idempotency_key": "k:1"}}],
    "from": {"email": "noreply@example.com"},
    "subject": "Hello",
    "content": [{"type": "text/plain", "value": "hi"}, {"type": "text/html", "value": "<p>hi</p>"}],
    "attachments": [{"content": "JVBERi0=", "type": "application/pdf", "filename": "r.pdf"}],
}


def post(
    url: str, body: Any = BODY, *, key: str = API_KEY, raw: bytes | None = None
) -> tuple[int, Any, dict[str, str]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/v3/mail/send",
        data=data,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


def test_accepts_and_records_a_valid_message(simulator: SendGridSimulator) -> None:
    status, body, headers = post(simulator.url)
    assert status == 202 and body == b""
    [message] = simulator.messages
    assert headers["X-Message-Id"] == message.message_id
    assert message.recipients == ("a@example.com",)
    assert (message.subject, message.text, message.html) == ("Hello", "hi", "<p>hi</p>")
    assert message.custom_args == {"idempotency_key": "k:1"}
    assert message.attachments[0].content == b"%PDF-" and message.attachments[0].filename == "r.pdf"
    assert simulator.count() == 1 and simulator.count(202) == 1


def test_validation_breach_is_a_400_naming_the_field(simulator: SendGridSimulator) -> None:
    status, body, _ = post(simulator.url, {**BODY, "from": {"email": "nobody"}})
    assert status == 400
    assert body["errors"][0]["field"] == "from.email"
    assert simulator.messages == []


def test_wrong_key_is_401_and_unverified_sender_is_403(simulator: SendGridSimulator) -> None:
    assert post(simulator.url, key="SG.wrong")[0] == 401
    assert post(simulator.url, {**BODY, "from": {"email": "other@example.com"}})[0] == 403


def test_a_request_over_30_mb_is_413(simulator: SendGridSimulator) -> None:
    status, body, _ = post(simulator.url, raw=b" " * (30 * 1024 * 1024 + 1))
    assert status == 413 and "too large" in body["errors"][0]["message"]


def test_scripted_rate_limit_carries_the_reset_headers(simulator: SendGridSimulator) -> None:
    simulator.script(Fault.rate_limited(reset_in_s=3))
    status, _, headers = post(simulator.url)
    assert status == 429
    assert headers["X-RateLimit-Remaining"] == "0" and headers["X-RateLimit-Limit"]
    assert time.time() + 2 <= int(headers["X-RateLimit-Reset"]) <= time.time() + 4
    assert post(simulator.url)[0] == 202


def test_faults_on_chosen_requests_and_matching_bodies(simulator: SendGridSimulator) -> None:
    simulator.script(Fault.error(500), on_request=2)
    simulator.script(Fault.error(503), match=to_recipient("b@example.com"), times=2)
    other = {**BODY, "personalizations": [{"to": [{"email": "b@example.com"}]}]}
    assert [post(simulator.url)[0], post(simulator.url)[0], post(simulator.url, other)[0]] == [202, 500, 503]
    assert post(simulator.url, other)[0] == 503 and post(simulator.url, other)[0] == 202
    assert simulator.count(503) == 2 and simulator.count(500) == 1 and simulator.count(202) == 2


def test_slow_response_trips_a_client_timeout(simulator: SendGridSimulator) -> None:
    simulator.script(Fault.slow(2.0))
    request = urllib.request.Request(
        f"{simulator.url}/v3/mail/send", data=json.dumps(BODY).encode(), method="POST"
    )
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        urllib.request.urlopen(request, timeout=0.3)


@pytest.mark.parametrize(("fault", "accepted"), [(Fault.reset(), 0), (Fault.accept_then_drop(), 1)])
def test_dropped_connections(simulator: SendGridSimulator, fault: Fault, accepted: int) -> None:
    simulator.script(fault)
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        post(simulator.url)
    assert len(simulator.messages) == accepted
    assert simulator.count(0) == 1


def test_runs_standalone_on_a_chosen_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "app.testing.sendgrid_server", "--port", str(port), "--api-key", API_KEY),
            *("--latency-p50-ms", "5", "--latency-p99-ms", "20"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        assert post(f"http://127.0.0.1:{port}")[0] == 202
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_simulator/stats", timeout=5) as response:
            assert json.load(response)["accepted"] == 1
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def post_concurrently(url: str, count: int, threads: int) -> list[float]:
    """``count`` posts from ``threads`` threads started together; each post's round-trip seconds."""
    durations: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)
    per_thread = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]

    def run(share: int) -> None:
        start.wait(30)
        for _ in range(share):
            t0 = time.perf_counter()
            status = post(url)[0]
            with lock:
                durations.append(time.perf_counter() - t0)
                statuses.append(status)

    workers = [threading.Thread(target=run, args=(share,)) for share in per_thread]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert statuses == [202] * count
    return durations


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def test_latency_follows_the_log_normal_it_is_given() -> None:
    # Given SendGrid's production latency: median 150 ms, 99th percentile 600 ms
    latency = Latency(p50_s=0.15, p99_s=0.6, seed=7)
    with SendGridSimulator(api_key=API_KEY, latency=latency) as simulator:
        # When 400 requests arrive from 64 clients at once
        measured = post_concurrently(simulator.url, 400, threads=64)
        drawn = [r.delay_s for r in simulator.requests]
    # Then the delays drawn have that median and 99th percentile (a statistical check of the seeded draw),
    # and the clients really waited for them: round trips are never shorter (no upper bound on them, which
    # would measure the host's speed, not the simulator)
    assert 0.13 <= statistics.median(drawn) <= 0.17
    assert 0.45 <= p99(drawn) <= 0.8
    assert statistics.median(measured) >= 0.13
    assert p99(measured) >= 0.45
    assert latency.mean_s == pytest.approx(0.15 * 2.718281828 ** (latency.sigma**2 / 2))


def test_a_delayed_answer_holds_only_its_own_connection() -> None:
    # Given every answer takes one second
    with SendGridSimulator(api_key=API_KEY, latency=Latency(p50_s=1.0, p99_s=1.0)) as simulator:
        # When 64 clients post at once
        post_concurrently(simulator.url, 64, threads=64)
        # Then all 64 were being answered at the same time
        assert simulator.max_in_flight == 64
        assert {r.delay_s for r in simulator.requests} == {1.0}


def test_latency_settings() -> None:
    assert Latency().mean_s == 0.0
    assert Latency(p50_s=0.2, p99_s=0.2).sigma == 0.0
    with pytest.raises(ValueError, match="p50 <= p99"):
        Latency(p50_s=0.3, p99_s=0.1)


def test_no_latency_by_default(simulator: SendGridSimulator) -> None:
    post(simulator.url)
    assert [r.delay_s for r in simulator.requests] == [0.0]
