"""The SendGrid backend through its real HTTP client (urllib3) against the simulator: payload, connection reuse and
the classification of every kind of failure at this boundary."""

from __future__ import annotations

import base64
import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Iterator

import pytest
import urllib3

from app.email.backends.sendgrid import SendGridBackend, classify_http_error
from app.email.message import Attachment, OutgoingEmail
from app.errors import JobError, PermanentError, RateLimited, RetryableError
from app.testing.sendgrid_server import Fault, Latency, SendGridSimulator
from tests.support.helpers import wait_for
from tests.unit.email.conftest import API_KEY

EMAIL = OutgoingEmail(
    idempotency_key="welcome:7",
    kind="welcome",
    to_email="ada@example.com",
    to_name="Ada",
    subject="Welcome",
    text="plain",
    html="<p>html</p>",
    headers={"List-Unsubscribe": "<https://app.example.com/account/notifications?unsubscribe=welcome>"},
    attachments=(Attachment("report.pdf", b"%PDF-1.7\n\x00\xff binary", "application/pdf"),),
)


def email(number: int) -> OutgoingEmail:
    return dataclasses.replace(
        EMAIL, idempotency_key=f"welcome:{number}", to_email=f"user{number}@example.com"
    )


@pytest.fixture
def backends() -> Iterator[list[SendGridBackend]]:
    """Backends made by a test, closed after it (their pools hold sockets)."""
    made: list[SendGridBackend] = []
    yield made
    for item in made:
        item.close()


@pytest.fixture
def make_backend(backends: list[SendGridBackend]):  # type: ignore[no-untyped-def]
    def make(simulator: SendGridSimulator, *, key: str = API_KEY, timeout_s: float = 2.0) -> SendGridBackend:
        made = SendGridBackend(
            api_key=key, host=simulator.url, timeout_s=timeout_s, sender="Jobs <noreply@example.com>"
        )
        backends.append(made)
        return made

    return make


def test_sends_one_personalization_with_the_idempotency_key(
    simulator: SendGridSimulator, make_backend
) -> None:  # type: ignore[no-untyped-def]
    provider_id = make_backend(simulator).send(EMAIL)
    [message] = simulator.messages
    assert provider_id == message.message_id
    assert message.custom_args["idempotency_key"] == "welcome:7"
    assert message.headers["List-Unsubscribe"].startswith("<https://app.example.com/")
    assert message.body["from"] == {"email": "noreply@example.com", "name": "Jobs"}
    assert [c["type"] for c in message.body["content"]] == ["text/plain", "text/html"]
    assert (
        message.body["attachments"][0]["content"] == base64.b64encode(EMAIL.attachments[0].content).decode()
    )
    assert message.attachments[0].content == EMAIL.attachments[0].content


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        (Fault.error(400, "The to email is bad"), PermanentError, "SendGrid 400: The to email is bad"),
        (Fault.error(403, "sender not verified"), PermanentError, "SendGrid 403"),
        (Fault.error(413, "too large"), PermanentError, "SendGrid 413"),
        (Fault.error(408), RetryableError, "SendGrid 408"),
        (Fault.error(500), RetryableError, "SendGrid 500"),
        (Fault.error(503), RetryableError, "SendGrid 503"),
        (Fault.reset(), RetryableError, "unreachable"),
        (Fault.accept_then_drop(), RetryableError, "unreachable: ProtocolError"),
        (Fault.slow(1.5), RetryableError, "unreachable: ReadTimeoutError"),
    ],
)
def test_errors_are_classified(
    simulator: SendGridSimulator,
    make_backend,  # type: ignore[no-untyped-def]
    fault: Fault,
    error: type[Exception],
    text: str,
) -> None:
    simulator.script(fault)
    with pytest.raises(error) as raised:
        make_backend(simulator, timeout_s=0.5).send(EMAIL)
    assert text in str(raised.value)
    assert not isinstance(raised.value, RateLimited)


def test_an_email_accepted_but_unanswered_is_retried_although_sendgrid_has_it(
    simulator: SendGridSimulator,
    make_backend,  # type: ignore[no-untyped-def]
) -> None:
    # Given SendGrid accepts the email and the connection drops before its answer
    simulator.script(Fault.accept_then_drop())
    # When the backend sends, Then the send is retryable (the claim's idempotency key makes the retry safe)
    with pytest.raises(RetryableError):
        make_backend(simulator).send(EMAIL)
    assert simulator.accepted_total == 1
    assert simulator.count(0) == 1


def test_network_errors_keep_their_cause(simulator: SendGridSimulator, make_backend) -> None:  # type: ignore[no-untyped-def]
    simulator.script(Fault.reset())
    with pytest.raises(RetryableError) as raised:
        make_backend(simulator).send(EMAIL)
    assert type(raised.value.__cause__).__module__.startswith("urllib3")


def test_bad_key_is_permanent_with_sendgrid_text(simulator: SendGridSimulator, make_backend) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError, match="401: The provided authorization grant is invalid"):
        make_backend(simulator, key="SG.wrong").send(EMAIL)


def test_validation_error_names_the_field(simulator: SendGridSimulator, make_backend) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError, match=r"field: personalizations\.0\.to\.0\.email"):
        make_backend(simulator).send(dataclasses.replace(EMAIL, to_email="not-an-address"))


def test_rate_limit_waits_until_the_reset_time(simulator: SendGridSimulator, make_backend) -> None:  # type: ignore[no-untyped-def]
    simulator.script(Fault.rate_limited(reset_in_s=5))
    with pytest.raises(RateLimited) as raised:
        make_backend(simulator).send(EMAIL)
    assert 4.0 <= raised.value.retry_after <= 6.0
    assert "SendGrid 429" in str(raised.value)


def test_the_api_key_is_in_no_log_line_and_no_error(
    simulator: SendGridSimulator,
    make_backend,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("", "urllib3", "app"):
        caplog.set_level(logging.DEBUG, logger=name)
    sender = make_backend(simulator, timeout_s=0.5)
    errors: list[JobError] = []
    sender.send(email(1))
    for number, fault in enumerate(
        [Fault.error(500), Fault.rate_limited(), Fault.reset(), Fault.accept_then_drop(), Fault.slow(1.0)], 2
    ):
        simulator.script(fault)
        with pytest.raises(JobError) as raised:
            sender.send(email(number))
        errors.append(raised.value)
    with pytest.raises(PermanentError) as unauthorized:
        make_backend(simulator, key="SG.wrong-secret-key").send(email(9))
    errors.append(unauthorized.value)
    assert len(caplog.records) > 0, "urllib3 logged at DEBUG: the check below saw its lines"
    logged = "\n".join(caplog.text.splitlines() + [r.getMessage() for r in caplog.records])
    assert API_KEY not in logged and "wrong-secret-key" not in logged
    for error in errors:
        chain = [error, error.__cause__, error.__context__]
        text = "\n".join(line for e in chain if e for line in traceback.format_exception_only(e)) + repr(
            chain
        )
        assert API_KEY not in text and "wrong-secret-key" not in text


def test_one_thread_sends_every_email_over_one_connection(
    simulator: SendGridSimulator,
    make_backend,  # type: ignore[no-untyped-def]
) -> None:
    sender = make_backend(simulator)
    ids = [sender.send(email(n)) for n in range(5)]
    assert len(set(ids)) == 5
    assert simulator.accepted_total == 5
    assert simulator.connections_opened == 1


def test_threads_share_the_pool_and_reuse_its_connections(
    simulator: SendGridSimulator,
    make_backend,  # type: ignore[no-untyped-def]
) -> None:
    sender = make_backend(simulator)

    def send_some(thread: int) -> None:
        for n in range(5):
            sender.send(email(10 * thread + n))

    threads = [threading.Thread(target=send_some, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert simulator.accepted_total == 20
    assert 1 <= simulator.connections_opened <= 4


def test_the_pool_keeps_a_connection_for_each_thread_however_many(make_backend) -> None:  # type: ignore[no-untyped-def]
    # Given 24 threads whose sends overlap (each answer takes 0.2 s)
    with SendGridSimulator(api_key=API_KEY, latency=Latency(p50_s=0.2, p99_s=0.2)) as simulator:
        sender = make_backend(simulator)
        start = threading.Barrier(24)

        def send_some(thread: int) -> None:
            start.wait(10)
            for n in range(3):
                sender.send(email(10 * thread + n))

        threads = [threading.Thread(target=send_some, args=(t,)) for t in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Then one connection per thread was opened, and each was kept for that thread's next sends
        assert simulator.accepted_total == 72
        assert simulator.max_in_flight == 24
        assert simulator.connections_opened == 24


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(
    make_backend,  # type: ignore[no-untyped-def]
) -> None:
    with SendGridSimulator(api_key=API_KEY, idle_timeout_s=0.2) as simulator:
        sender = make_backend(simulator)
        sender.send(email(1))
        wait_for(
            lambda: simulator.connections_closed == 1,
            timeout=5,
            what="the server to close the idle connection",
        )
        sender.send(email(2))
        assert simulator.accepted_total == 2
        assert simulator.connections_opened == 2


def test_after_a_reset_connection_the_next_email_goes_out_on_a_new_one(
    simulator: SendGridSimulator,
    make_backend,  # type: ignore[no-untyped-def]
) -> None:
    sender = make_backend(simulator)
    sender.send(email(1))
    simulator.script(Fault.reset())
    with pytest.raises(RetryableError, match="unreachable"):
        sender.send(email(2))
    sender.send(email(3))
    assert simulator.accepted_total == 2
    assert simulator.connections_opened == 2


def test_error_responses_keep_the_connection(simulator: SendGridSimulator, make_backend) -> None:  # type: ignore[no-untyped-def]
    sender = make_backend(simulator)
    for fault in (Fault.error(500), Fault.error(503), Fault.rate_limited()):
        simulator.script(fault)
        with pytest.raises(RetryableError):
            sender.send(EMAIL)
    sender.send(EMAIL)
    assert simulator.connections_opened == 1


def test_an_unreachable_host_is_retryable(backends: list[SendGridBackend]) -> None:
    # A port that was free a moment ago: nothing listens there.
    with SendGridSimulator(api_key=API_KEY) as simulator:
        url = simulator.url
    sender = SendGridBackend(api_key=API_KEY, host=url, timeout_s=2.0, sender="noreply@example.com")
    backends.append(sender)
    with pytest.raises(RetryableError, match="unreachable: NewConnectionError"):
        sender.send(EMAIL)


def test_a_proxy_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, backends: list[SendGridBackend]
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "bypassed.example.com")
    proxied = SendGridBackend(
        api_key=API_KEY, host="https://api.sendgrid.com", timeout_s=2.0, sender="noreply@example.com"
    )
    bypassed = SendGridBackend(
        api_key=API_KEY, host="https://bypassed.example.com", timeout_s=2.0, sender="noreply@example.com"
    )
    backends += [proxied, bypassed]
    assert isinstance(proxied._pool, urllib3.ProxyManager)
    assert proxied._pool.proxy is not None and proxied._pool.proxy.host == "proxy.internal"
    assert not isinstance(bypassed._pool, urllib3.ProxyManager)


def test_classification_rules_without_a_server() -> None:
    now = time.time()
    assert classify_http_error(
        429, b"", {"X-RateLimit-Reset": str(int(now) + 30)}, now=now
    ).retry_after == pytest.approx(  # type: ignore[attr-defined]
        int(now) + 30 - now
    )
    assert classify_http_error(429, b"", {}, now=now).retry_after == 60.0  # type: ignore[attr-defined]
    assert classify_http_error(429, b"", {"X-RateLimit-Reset": "garbage"}, now=now).retry_after == 60.0  # type: ignore[attr-defined]
    assert (
        classify_http_error(429, b"", {"X-RateLimit-Reset": str(now + 10**6)}, now=now).retry_after == 3600.0
    )  # type: ignore[attr-defined]
    assert isinstance(classify_http_error(408, b"", {}), RetryableError)
    assert type(classify_http_error(404, b"nope", {})) is PermanentError
    assert type(classify_http_error(401, b"", {})) is PermanentError
    assert (
        str(classify_http_error(400, b'{"errors":[{"message":"m","field":"f"}]}', {}))
        == "SendGrid 400: m (field: f)"
    )
