"""Each rule of the Mail Send contract is enforced and names the field it concerns."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.testing import sendgrid_rules

VALID: dict[str, Any] = {
    "personalizations": [
        {"to": [{"email": "a@example.com"}], "custom_args": {"idempotency_key": "welcome:1"}}
    ],
    "from": {"email": "noreply@example.com"},
    "subject": "Hello",
    "content": [{"type": "text/plain", "value": "hi"}, {"type": "text/html", "value": "<p>hi</p>"}],
}


def _with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def test_a_valid_request_has_no_breach() -> None:
    assert sendgrid_rules.check(VALID) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with(personalizations=[]), "personalizations"),
        (_with(personalizations=[{"to": [{"email": "a@example.com"}]}] * 1001), "personalizations"),
        (
            _with(personalizations=[{"to": [{"email": f"a{i}@example.com"} for i in range(1001)]}]),
            "personalizations",
        ),
        (_with(personalizations=[{"subject": "x"}]), "personalizations.0.to"),
        (_with(personalizations=[{"to": [{"email": "nope"}]}]), "personalizations.0.to.0.email"),
        (_with(**{"from": None}), "from.email"),
        (_with(**{"from": {"email": "not an address"}}), "from.email"),
        (_with(reply_to={"email": "x"}), "reply_to.email"),
        (_with(subject=None), "subject"),
        (
            _with(content=[{"type": "text/html", "value": "<p/>"}, {"type": "text/plain", "value": "x"}]),
            "content",
        ),
        (_with(content=None), "content"),
        (_with(custom_args={"n": 1}), "custom_args"),
        (_with(custom_args={"big": "x" * 10_001}), "custom_args"),
        (_with(categories=[f"c{i}" for i in range(11)]), "categories"),
        (_with(attachments=[{"filename": "a.pdf", "content": "***"}]), "attachments.0.content"),
        (_with(attachments=[{"content": "aGk="}]), "attachments.0.filename"),
    ],
)
def test_each_breach_names_its_field(body: dict[str, Any], field: str) -> None:
    assert field in [b.field for b in sendgrid_rules.check(body)]


def test_a_subject_in_every_personalization_replaces_the_global_one() -> None:
    body = _with(subject=None, personalizations=[{"to": [{"email": "a@example.com"}], "subject": "Hi"}])
    assert sendgrid_rules.check(body) == []
