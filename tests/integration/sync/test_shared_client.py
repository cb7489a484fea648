"""One SAM.gov client for a whole worker process: partitions share it, and what it learns about paging is not
learned for good (a long-lived client still notices when SAM.gov changes what ``offset`` means)."""

from __future__ import annotations

from datetime import date

import pytest
import redis

from app.sync.client import OpportunityPage, SamGovClient
from app.sync.quota import QuotaBudget
from app.testing.samgov_server import SamGovSimulator
from tests.support.samgov import samgov_client, samgov_server

pytestmark = pytest.mark.integration

__all__ = ["samgov_server"]

FROM, TO = date(2026, 8, 3), date(2026, 11, 30)


def walk(client: SamGovClient) -> list[OpportunityPage]:
    return list(client.iter_opportunity_pages(posted_from=FROM, posted_to=TO, purpose="scheduled", limit=400))


@pytest.mark.parametrize("with_budget", [True, False], ids=["redis-memory", "no-budget"])
def test_one_client_follows_every_change_of_the_offset_mode(
    redis_client: redis.Redis[bytes], samgov_server: SamGovSimulator, with_budget: bool
) -> None:
    total = len(samgov_server.dataset.query(FROM, TO))
    quota = QuotaBudget(redis_client, daily_quota=1000) if with_budget else None
    with samgov_client(samgov_server, quota=quota) as client:
        # Given the client detected record offsets
        assert sum(len(p.records) for p in walk(client)) == total
        assert client.offset_mode == "record"
        for mode in ("page", "record"):
            # When SAM.gov switches, the next walk ends short and reports it
            samgov_server.configure(offset_mode=mode)  # type: ignore[arg-type]
            assert walk(client)[-1].shortfall > 0
            # Then the walk after it detects the new mode and gets every notice, with no shortfall
            again = walk(client)
            assert sum(len(p.records) for p in again) == total and again[-1].shortfall == 0
            assert client.offset_mode == mode
