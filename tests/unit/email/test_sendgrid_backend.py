"""The SendGrid backend through the real SDK against the simulator: payload shape and error classification."""

from __future__ import annotations

import base64
import dataclasses
import time

import pytest

from app.email.backends.sendgrid import SendGridBackend, classify_http_error
from app.email.message import Attachment, OutgoingEmail
from app.errors import PermanentError, RateLimited, RetryableError
from app.testing.sendgrid_server import Fault, SendGridSimulator
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


def backend(simulator: SendGridSimulator, *, key: str = API_KEY, timeout_s: float = 2.0) -> SendGridBackend:
    return SendGridBackend(
        api_key=key, host=simulator.url, timeout_s=timeout_s, sender="Jobs <noreply@example.com>"
    )


def test_sends_one_personalization_with_the_idempotency_key(simulator: SendGridSimulator) -> None:
    provider_id = backend(simulator).send(EMAIL)
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
        (Fault.error(500), RetryableError, "SendGrid 500"),
        (Fault.error(503), RetryableError, "SendGrid 503"),
        (Fault.reset(), RetryableError, "unreachable"),
        (Fault.accept_then_drop(), RetryableError, "unreachable"),
        (Fault.slow(1.5), RetryableError, "timed out"),
    ],
)
def test_errors_are_classified(
    simulator: SendGridSimulator, fault: Fault, error: type[Exception], text: str
) -> None:
    simulator.script(fault)
    with pytest.raises(error) as raised:
        backend(simulator, timeout_s=0.5).send(EMAIL)
    assert text in str(raised.value)
    assert not isinstance(raised.value, RateLimited)


def test_bad_key_is_permanent_with_sendgrid_text(simulator: SendGridSimulator) -> None:
    with pytest.raises(PermanentError, match="401: The provided authorization grant is invalid"):
        backend(simulator, key="SG.wrong").send(EMAIL)


def test_validation_error_names_the_field(simulator: SendGridSimulator) -> None:
    with pytest.raises(PermanentError, match=r"field: personalizations\.0\.to\.0\.email"):
        backend(simulator).send(dataclasses.replace(EMAIL, to_email="not-an-address"))


def test_rate_limit_waits_until_the_reset_time(simulator: SendGridSimulator) -> None:
    simulator.script(Fault.rate_limited(reset_in_s=5))
    with pytest.raises(RateLimited) as raised:
        backend(simulator).send(EMAIL)
    assert 4.0 <= raised.value.retry_after <= 6.0


def test_classification_rules_without_a_server() -> None:
    now = time.time()
    assert classify_http_error(
        429, b"", {"X-RateLimit-Reset": str(int(now) + 30)}, now=now
    ).retry_after == pytest.approx(  # type: ignore[attr-defined]
        int(now) + 30 - now
    )
    assert classify_http_error(429, b"", {}, now=now).retry_after == 60.0  # type: ignore[attr-defined]
    assert isinstance(classify_http_error(408, b"", {}), RetryableError)
    assert type(classify_http_error(404, b"nope", {})) is PermanentError
    assert (
        str(classify_http_error(400, b'{"errors":[{"message":"m","field":"f"}]}', {}))
        == "SendGrid 400: m (field: f)"
    )
