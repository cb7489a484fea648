"""The Idempotency middleware on the real Redis: done-marks for ordinary jobs, none for the emails' own claims."""

from __future__ import annotations

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from app.jobs import SPECS
from app.middleware.idempotency import Idempotency, done_key

pytestmark = pytest.mark.integration


def proxy(actor: str, key: str) -> MessageProxy:
    return MessageProxy(
        Message(queue_name="email", actor_name=actor, args=(), kwargs={}, options={"idempotency_key": key})
    )


def run(middleware: Idempotency, message: MessageProxy) -> None:
    middleware.before_process_message(None, message)  # type: ignore[arg-type]
    middleware.after_process_message(None, message, result=None, exception=None)  # type: ignore[arg-type]


def test_an_ordinary_job_is_marked_done_and_its_duplicate_skipped(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    middleware = Idempotency()
    run(middleware, proxy("dispatch_weekly_summaries", "weekly-dispatch:2026-W48"))
    assert redis_client.exists(done_key("weekly-dispatch:2026-W48"))
    with pytest.raises(SkipMessage):
        middleware.before_process_message(
            None, proxy("dispatch_weekly_summaries", "weekly-dispatch:2026-W48")
        )  # type: ignore[arg-type]


@pytest.mark.parametrize("actor", sorted(name for name, spec in SPECS.items() if spec.claims_own_key))
def test_an_email_that_claims_its_own_key_costs_no_redis_mark(
    actor: str, platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    middleware = Idempotency()
    run(middleware, proxy(actor, f"{actor}:42"))
    assert not redis_client.exists(done_key(f"{actor}:42"))
    redis_client.set(done_key(f"{actor}:42"), "an old mark")
    middleware.before_process_message(None, proxy(actor, f"{actor}:42"))  # type: ignore[arg-type]  # not skipped


def test_the_emails_that_claim_their_key_are_the_ones_keyed_like_their_email_log_rows() -> None:
    assert {name for name, spec in SPECS.items() if spec.claims_own_key} == {
        "send_welcome_email",
        "send_opportunity_reminder",
        "send_weekly_summary",
    }
