"""The dispatchers against real Redis and PostgreSQL: who gets a message, for which day, in pipelined batches."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import redis

from app import correlation
from app.email import service
from tests.integration.email.factories import add_user
from tests.integration.email.queue import enqueued

pytestmark = pytest.mark.integration

ZONES = ("America/New_York", "Europe/London", "Asia/Kolkata", "UTC")


@pytest.mark.parametrize("day", [dt.date(2026, 11, 1), dt.date(2026, 3, 29)])
def test_each_user_is_dispatched_once_at_nine_local(
    platform_env: dict[str, str], redis_client: redis.Redis, day: dt.date
) -> None:
    # Given users across zones, and users who are inactive or have no address
    users = {add_user(timezone=zone): zone for zone in ZONES}
    add_user(timezone="UTC", is_active=False)
    add_user(timezone="UTC", email=None)
    # When the dispatcher runs for every hour of a DST change day (and the hours either side)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(hours=12)
    seen: Counter[tuple[int, str]] = Counter()
    for hour in range(48):
        tick = start + dt.timedelta(hours=hour)
        before = len(enqueued(redis_client))
        service.dispatch_daily_reminders(at=tick + dt.timedelta(seconds=7))
        for message in enqueued(redis_client)[before:]:
            user_id, on = message["kwargs"]["user_id"], message["kwargs"]["on"]
            seen[(user_id, on)] += 1
            # Then each message is for a user whose local clock reads 09:xx on the day it names
            local = tick.astimezone(ZoneInfo(users[user_id]))
            assert (local.hour, local.date().isoformat()) == (9, on)
            assert message["options"]["idempotency_key"] == f"reminder:{user_id}:{on}"
    # And every reachable user got the change day exactly once
    assert {(uid, day.isoformat()) for uid in users} <= set(seen)
    assert set(seen.values()) == {1}
    assert {uid for uid, _ in seen} == set(users)


def test_weekly_fan_out_reaches_every_reachable_user_across_batches(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    reachable = [add_user() for _ in range(7)]
    add_user(is_active=False)
    sent = service.dispatch_weekly_summaries(week="2026-W48", batch_size=3)
    messages = enqueued(redis_client)
    assert sent == 7 == len(messages)
    assert sorted(m["kwargs"]["user_id"] for m in messages) == reachable
    assert {m["options"]["idempotency_key"] for m in messages} == {f"weekly:{u}:2026-W48" for u in reachable}
    assert all(m["actor_name"] == "send_weekly_summary" for m in messages)


def test_one_dispatch_shares_one_correlation_id(
    platform_env: dict[str, str], redis_client: redis.Redis
) -> None:
    for _ in range(4):
        add_user()
    service.dispatch_weekly_summaries(week="2026-W48", batch_size=2)
    with correlation.correlated("dispatch-run-2") as chosen:
        service.dispatch_weekly_summaries(week="2026-W49", batch_size=2)
    by_week: dict[str, set[str]] = {}
    for message in enqueued(redis_client):
        by_week.setdefault(message["kwargs"]["week"], set()).add(message["options"]["correlation_id"])
    assert len(by_week["2026-W48"]) == 1
    assert by_week["2026-W49"] == {chosen}
