from __future__ import annotations

import pytest

from app.observability import scrub


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "SENDGRID_API_KEY",
        "x-api-key",
        "Authorization",
        "admin_password",
        "html_body",
        "email",
        "sentry_dsn",
    ],
)
def test_secret_keys_are_filtered(key: str) -> None:
    assert scrub({key: "value"}) == {key: "[Filtered]"}


@pytest.mark.parametrize("key", ["contexts", "pre_context", "context_line", "message", "queue", "actor"])
def test_ordinary_and_sdk_keys_are_kept(key: str) -> None:
    assert scrub({key: "value"}) == {key: "value"}


def test_secrets_inside_strings_are_replaced() -> None:
    text = (
        "GET https://api.sam.gov/opportunities/v2/search?postedFrom=01/01/2026&api_key=SECRET123 "
        "Authorization: Bearer SG.abcdefghij.klmnopqrstu to jane.doe@example.com "
        "redis://user:hunter2@db:6379/0"
    )
    cleaned = scrub({"nested": [text]})["nested"][0]
    for secret in ("SECRET123", "SG.abcdefghij", "jane.doe@example.com", "hunter2"):
        assert secret not in cleaned
    assert "api_key=[Filtered]" in cleaned
