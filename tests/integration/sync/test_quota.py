"""The daily SAM.gov budget in Redis: atomic across threads and processes, with a reserve for on-demand work."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
import redis

from app.errors import RateLimited, SettingsError
from app.sync.client import OpportunityPage, SamGovClient, require_key
from app.sync.errors import QuotaReserved, SamGovRateLimited
from app.sync.quota import QuotaBudget
from app.testing.samgov_server import Fault, SamGovSimulator
from tests.conftest import REDIS_URL
from tests.support.helpers import ROOT
from tests.support.samgov import samgov_client, samgov_server

pytestmark = pytest.mark.integration

__all__ = ["samgov_server"]

LATE = datetime(2026, 12, 6, 23, 59, 0, tzinfo=UTC)


def budget(client: Any, daily: int, reserve: int = 0, now: datetime | None = None) -> QuotaBudget:
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    return QuotaBudget(client, daily_quota=daily, reserve=reserve, clock=clock)


def spend_until_refused(quota: QuotaBudget) -> int:
    spent = 0
    while True:
        try:
            quota.spend("on_demand")
        except QuotaReserved:
            return spent
        spent += 1


SPENDER = """
import sys, redis
from app.sync.quota import QuotaBudget
from app.sync.errors import QuotaReserved
quota = QuotaBudget(redis.Redis.from_url(sys.argv[1]), daily_quota=int(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()
spent = 0
while True:
    try:
        quota.spend("on_demand")
    except QuotaReserved:
        break
    spent += 1
print(spent, flush=True)
"""


def test_threads_and_another_process_never_spend_more_than_the_quota(
    redis_client: redis.Redis[bytes],
) -> None:
    # Given a budget of 400 shared by a separate process and 6 threads with their own connections
    daily = 400
    other = subprocess.Popen(
        [sys.executable, "-c", SPENDER, REDIS_URL, str(daily)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "ready"
        counts: list[int] = []
        clients = [redis.Redis.from_url(REDIS_URL) for _ in range(6)]
        threads = [
            threading.Thread(target=lambda c=c: counts.append(spend_until_refused(budget(c, daily))))
            for c in clients
        ]
        # When all of them spend at once until refused
        other.stdin.write("go\n")
        other.stdin.flush()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        out, _ = other.communicate(timeout=30)
    finally:
        other.kill()
        other.wait()
    for c in clients:
        c.close()
    # Then exactly the quota was granted, no more, and the counter says so
    assert sum(counts) + int(out.strip()) == daily
    assert len(counts) == 6
    assert budget(redis_client, daily).used_today() == daily


def test_scheduled_work_leaves_the_reserve_and_waits_for_midnight(redis_client: redis.Redis[bytes]) -> None:
    quota = budget(redis_client, daily=10, reserve=3, now=LATE)
    # Scheduled work may take 7 of 10
    assert [quota.spend("scheduled") for _ in range(7)] == [6, 5, 4, 3, 2, 1, 0]
    with pytest.raises(QuotaReserved) as caught:
        quota.spend("scheduled")
    assert isinstance(caught.value, RateLimited)
    assert caught.value.retry_after == 60  # 23:59:00 -> 00:00 UTC
    assert "reserve" in str(caught.value)
    assert (quota.remaining("scheduled"), quota.remaining("on_demand"), quota.used_today()) == (0, 3, 7)
    # On-demand work may use the reserve, and then it is refused too
    assert [quota.spend("on_demand") for _ in range(3)] == [2, 1, 0]
    with pytest.raises(QuotaReserved):
        quota.spend("on_demand")
    with pytest.raises(QuotaReserved):
        quota.spend("on_demand", 1)
    assert quota.used_today() == 10  # a refusal counts nothing
    # The next UTC day starts from zero
    tomorrow = budget(redis_client, daily=10, reserve=3, now=datetime(2026, 12, 7, 0, 0, 1, tzinfo=UTC))
    assert tomorrow.spend("scheduled", 2) == 5
    assert redis_client.ttl(tomorrow.key()) > 24 * 3600


def test_a_429_marks_the_day_spent_for_every_worker(
    redis_client: redis.Redis[bytes], samgov_server: SamGovSimulator
) -> None:
    from app.metrics import SAMGOV_QUOTA_REMAINING

    quota = budget(redis_client, daily=100, reserve=10)
    samgov_server.script(Fault.rate_limited(next_access_in_s=30))
    with samgov_client(samgov_server, quota=quota) as client, pytest.raises(SamGovRateLimited):
        list(
            client.iter_opportunity_pages(
                posted_from=date(2026, 11, 1), posted_to=date(2026, 11, 5), purpose="on_demand"
            )
        )
    assert quota.used_today() == 100
    assert SAMGOV_QUOTA_REMAINING._value.get() == 0
    with pytest.raises(QuotaReserved):
        quota.spend("on_demand")


def test_the_client_stops_before_the_reserve_without_sending(
    redis_client: redis.Redis[bytes], samgov_server: SamGovSimulator
) -> None:
    from app.metrics import SAMGOV_QUOTA_REMAINING

    # Given 6 requests a day, 2 of them reserved, and a walk that needs 8 pages
    quota = budget(redis_client, daily=6, reserve=2)
    pages = []
    with samgov_client(samgov_server, quota=quota, offset_mode="record") as client:
        with pytest.raises(QuotaReserved):
            for page in client.iter_opportunity_pages(
                posted_from=date(2026, 8, 3), posted_to=date(2026, 11, 30), purpose="scheduled", limit=400
            ):
                pages.append(page)
        # Then 4 pages were fetched and SAM.gov never saw a fifth request
        assert len(pages) == 4 and samgov_server.count() == 4
        assert SAMGOV_QUOTA_REMAINING._value.get() == 2
        # And on-demand work still gets its reserve
        on_demand = list(client.iter_entity_pages([samgov_server.dataset.uei(0)], purpose="on_demand"))
    assert len(on_demand) == 1 and quota.remaining("on_demand") == 1


def test_settings_give_the_budget_and_refuse_the_real_api_without_a_key(
    monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis[bytes]
) -> None:
    from app.settings import reset_settings

    monkeypatch.setenv("SAM_GOV_DAILY_QUOTA", "10")
    monkeypatch.setenv("SAM_GOV_QUOTA_RESERVE_PCT", "20")
    monkeypatch.delenv("SAM_GOV_API_KEY", raising=False)
    monkeypatch.delenv("SAM_GOV_BASE_URL", raising=False)
    reset_settings()
    try:
        quota = QuotaBudget.from_settings()
        assert (quota.daily_quota, quota.reserve) == (10, 2)
        with pytest.raises(SettingsError) as caught:
            SamGovClient.from_settings()
        assert "SAM_GOV_API_KEY" in str(caught.value) and "\n" not in str(caught.value)
        monkeypatch.setenv("SAM_GOV_BASE_URL", "http://127.0.0.1:9")
        reset_settings()
        with SamGovClient.from_settings() as client:
            assert client.base_url == "http://127.0.0.1:9"
    finally:
        reset_settings()
    require_key("http://127.0.0.1:9", None)


def walk_all(client: SamGovClient) -> list[OpportunityPage]:
    return list(
        client.iter_opportunity_pages(
            posted_from=date(2026, 8, 3), posted_to=date(2026, 11, 30), purpose="scheduled", limit=400
        )
    )


def test_the_detected_offset_mode_is_shared_through_redis_and_forgotten_when_wrong(
    redis_client: redis.Redis[bytes], samgov_server: SamGovSimulator
) -> None:
    total = len(samgov_server.dataset.query(date(2026, 8, 3), date(2026, 11, 30)))
    needed = -(-total // 400)
    quota = budget(redis_client, daily=1000)
    # Given one client (one worker) detected record offsets
    with samgov_client(samgov_server, quota=quota) as first:
        assert sum(len(p.records) for p in walk_all(first)) == total
    assert samgov_server.count() == needed + 1  # the probe
    # When a new client (another worker) walks, it needs no probe
    with samgov_client(samgov_server, quota=quota) as second:
        assert sum(len(p.records) for p in walk_all(second)) == total
    assert samgov_server.count() == 2 * needed + 1
    # And when SAM.gov switches to page indexes, the remembered mode's short walk is reported and forgotten,
    # and the next walk detects the new mode and gets everything
    samgov_server.configure(offset_mode="page")
    with samgov_client(samgov_server, quota=quota) as third:
        assert walk_all(third)[-1].shortfall > 0
        again = walk_all(third)
    assert sum(len(p.records) for p in again) == total and again[-1].shortfall == 0
    assert third.offset_mode == "page"
