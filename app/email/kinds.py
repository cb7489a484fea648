"""Email kinds: the names users opt out of (``User.email_opt_outs``), templates are named after and metrics use."""

from __future__ import annotations

#: The welcome email, once per user.
WELCOME = "welcome"
#: The daily reminder of deadlines and new matches.
REMINDER = "reminder"
#: Notifications about a proposal (created, submitted, status changed, deadline approaching).
PROPOSAL = "proposal"
#: The weekly summary.
WEEKLY = "weekly"

ALL: tuple[str, ...] = (WELCOME, REMINDER, PROPOSAL, WEEKLY)

#: An operational alert to ADMIN_EMAILS (a failed sync run); not a user email, so nobody opts out of it.
ADMIN_ALERT = "admin_alert"
