"""The helpers refuse bad jobs at the call site, before anything reaches Redis."""

from __future__ import annotations

import datetime as dt

import pytest

from app import correlation, enqueue
from app.errors import InvalidJob
from app.jobs import SPECS


@pytest.mark.parametrize(
    ("actor", "kwargs", "fragment"),
    [
        ("send_welcome_email", {"user_id": 0}, "user_id"),
        ("send_welcome_email", {"user_id": "abc"}, "user_id"),
        ("send_welcome_email", {}, "user_id"),
        ("send_welcome_email", {"user_id": 1, "extra": 2}, "extra"),
        ("send_proposal_notification", {"proposal_id": 3, "event": "exploded"}, "event"),
        ("send_weekly_summary", {"user_id": 1, "week": "2026-W60"}, "week"),
        (
            "send_weekly_summary",
            {"user_id": 1, "week": "2026-W48", "attachments": ["../etc/passwd"]},
            "attachments",
        ),
        ("dispatch_daily_reminders", {"at": dt.datetime(2026, 11, 23, 9)}, "time zone"),
        ("dispatch_weekly_summaries", {"week": "2026-48"}, "week"),
    ],
)
def test_bad_arguments_raise_invalid_job_naming_the_field(
    actor: str, kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidJob) as caught:
        enqueue.job(actor, **kwargs)
    assert fragment in str(caught.value)


def test_unknown_actor_is_refused() -> None:
    with pytest.raises(InvalidJob, match="unknown actor"):
        enqueue.job("send_fax", user_id=1)


@pytest.mark.parametrize("delay", [-1, dt.timedelta(days=8), "soon", True])
def test_bad_delays_are_refused(delay: object) -> None:
    with pytest.raises(InvalidJob, match="delay"):
        enqueue.job("send_welcome_email", user_id=1, delay=delay)  # type: ignore[arg-type]


def test_a_prepared_job_carries_queue_actor_options_and_json_safe_arguments() -> None:
    with correlation.correlated("req-123"):
        prepared = enqueue.job(
            "dispatch_daily_reminders",
            at=dt.datetime(2026, 11, 23, 14, tzinfo=dt.UTC),
            delay=dt.timedelta(seconds=3),
            idempotency_key="k1",
        )
    message = prepared.message
    assert (message.queue_name, message.actor_name) == ("email", "dispatch_daily_reminders")
    assert message.kwargs == {"at": "2026-11-23T14:00:00Z"}
    assert message.options == {"idempotency_key": "k1", "correlation_id": "req-123"}
    assert prepared.delay_ms == 3_000
    assert prepared.ref == enqueue.JobRef(message.message_id, "email", "dispatch_daily_reminders")


def test_the_catalogue_holds_the_email_actors_and_the_documents_report_actors() -> None:
    """Each queue's actors are registered with them (the documents queue's report actors; others join later)."""
    by_queue: dict[str, set[str]] = {}
    for spec in SPECS.values():
        by_queue.setdefault(spec.queue, set()).add(spec.actor)
    assert {"generate_report", "export_data"} <= by_queue.pop("documents")
    assert by_queue.pop("sync") == {
        "sync_opportunities",
        "sync_opportunity_partition",
        "sync_entities",
        "refresh_analytics",
        "cleanup_data",
    }
    assert by_queue == {
        "email": {
            "send_welcome_email",
            "send_opportunity_reminder",
            "send_proposal_notification",
            "send_weekly_summary",
            "dispatch_daily_reminders",
            "dispatch_weekly_summaries",
            "send_admin_alert",
        }
    }


def test_helpers_default_their_idempotency_keys() -> None:
    # One reminder per user and local day, one summary per user and ISO week (the week of 1 January 2027 is
    # 2026's 53rd)
    reminder = enqueue.opportunity_reminder_job(42, dt.date(2026, 11, 23))
    weekly = enqueue.weekly_summary_job(42, enqueue.iso_week(dt.date(2027, 1, 1)))
    assert reminder.message.options["idempotency_key"] == "reminder:42:2026-11-23"
    assert weekly.message.options["idempotency_key"] == "weekly:42:2026-W53"
    assert enqueue.iso_week(dt.date(2026, 11, 23)) == "2026-W48"
    # And a key the caller gives wins over the default
    chosen = enqueue.weekly_summary_job(42, "2026-W48", idempotency_key="resend:42")
    assert chosen.message.options["idempotency_key"] == "resend:42"
