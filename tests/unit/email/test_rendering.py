"""Every kind renders both parts from the templates, CSS inlined, user content escaped, unsubscribe included."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.email.content.views import OpportunityView, ProposalView
from app.email.recipients import Recipient
from app.email.rendering import get_renderer

EVIL = '<script>alert("x")</script>'
RECIPIENT = Recipient(7, "ada@example.com", EVIL, "America/New_York", True, frozenset())
OPPORTUNITY = OpportunityView(
    "N1",
    f"Cloud {EVIL}",
    "DEPT OF DEFENSE",
    "Mon 23 Nov 2026, 17:00 EST",
    "SBA",
    "https://app.example.com/opportunities/N1",
)
PROPOSAL = ProposalView(
    17, f"Bid {EVIL}", "in_review", dt.date(2026, 12, 1), "https://app.example.com/proposals/17"
)
COMMON = {"recipient": RECIPIENT, "dashboard_url": "https://app.example.com/dashboard"}
CONTEXTS: dict[str, dict[str, Any]] = {
    "welcome": {"has_interests": False, "saved_url": "https://app.example.com/opportunities/saved"},
    "reminder": {
        "on": dt.date(2026, 11, 23),
        "window_days": 7,
        "deadlines": [OPPORTUNITY],
        "matches": [OPPORTUNITY],
    },
    "proposal": {
        "event": "status_changed",
        "proposal": PROPOSAL,
        "new_status": "in review",
        "is_owner": False,
        "owner_name": EVIL,
        "opportunity": OPPORTUNITY,
    },
    "weekly": {
        "week": "2026-W48",
        "monday": dt.date(2026, 11, 23),
        "matches": [OPPORTUNITY],
        "deadlines": [],
        "open_proposals": [PROPOSAL],
        "status_counts": [("in_review", 1)],
        "attachment_names": ["w.pdf"],
    },
}


@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_each_kind_renders_escaped_inlined_parts(kind: str) -> None:
    unsubscribe = f"https://app.example.com/account/notifications?unsubscribe={kind}"
    rendered = get_renderer().render(
        kind, {**CONTEXTS[kind], **COMMON, "kind": kind, "unsubscribe_url": unsubscribe}
    )
    assert rendered.subject and "\n" not in rendered.subject
    # HTML: styles inlined, no <style> block left, user content escaped
    assert "<style" not in rendered.html and 'style="' in rendered.html
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert unsubscribe.replace("&", "&amp;") in rendered.html or unsubscribe in rendered.html
    # Text: literal, with the same unsubscribe link
    assert unsubscribe in rendered.text and "&lt;" not in rendered.text


def test_reminder_lists_links_and_deadlines() -> None:
    context = {**CONTEXTS["reminder"], **COMMON, "kind": "reminder", "unsubscribe_url": "u"}
    rendered = get_renderer().render("reminder", context)
    assert rendered.subject == "1 deadline coming up, 1 new match"
    assert 'href="https://app.example.com/opportunities/N1"' in rendered.html
    assert "Responses due Mon 23 Nov 2026, 17:00 EST" in rendered.text
