"""The daily SAM.gov request budget, counted in Redis so every worker process spends from one figure.

SAM.gov keys allow 10, 1,000 or 10,000 requests per UTC day and answer 429 for the rest of the day once they are
spent. The budget counts every request before it is sent (a failed request costs SAM.gov quota too) under one key
per UTC day. Scheduled work may spend only ``daily_quota - reserve``; the reserve stays for on-demand work
(a user's "sync this entity now"), which may spend up to the whole quota. A refused spend raises
:class:`QuotaReserved` with ``retry_after`` = seconds to the next 00:00 UTC, which the retry middleware turns
into a wait that costs no attempt. See docs/samgov.md "Quota".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from app.redis_client import platform_key
from app.sync.errors import QuotaReserved

if TYPE_CHECKING:
    import redis

#: Why a request is made: scheduled work must leave the reserve alone, on-demand work may use it.
Purpose = Literal["scheduled", "on_demand"]
PURPOSES: tuple[Purpose, ...] = ("scheduled", "on_demand")

#: A day's counter outlives its day by this much, so a clock slightly behind still finds it.
KEY_TTL_S = 2 * 24 * 3600

# Check and count in one step: two workers can never both take the last request.
_SPEND = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if used + n > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, used}
"""

# Raise the counter to at least ARGV[1] (SAM.gov said 429: the key is spent whatever we counted).
_EXHAUST = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return tonumber(ARGV[1])
end
return used
"""


def seconds_to_utc_midnight(now: datetime) -> float:
    """Seconds from ``now`` (aware) to the next 00:00 UTC, when SAM.gov resets every quota."""
    now = now.astimezone(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return (midnight - now).total_seconds()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class QuotaBudget:
    """Requests left today for this API key, shared through Redis by every worker."""

    def __init__(
        self,
        redis_client: redis.Redis[bytes],
        *,
        daily_quota: int,
        reserve: int = 0,
        key_prefix: str = "samgov:quota",
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if daily_quota < 1 or not 0 <= reserve < daily_quota:
            raise ValueError("the quota budget needs daily_quota >= 1 and 0 <= reserve < daily_quota")
        self.redis = redis_client
        self.daily_quota = daily_quota
        self.reserve = reserve
        self.key_prefix = key_prefix
        self.clock = clock
        self._spend = redis_client.register_script(_SPEND)
        self._exhaust = redis_client.register_script(_EXHAUST)

    @classmethod
    def from_settings(cls) -> QuotaBudget:
        """The budget of ``SAM_GOV_DAILY_QUOTA`` / ``SAM_GOV_QUOTA_RESERVE`` on the platform's Redis."""
        from app.redis_client import get_redis
        from app.settings import get_settings

        settings = get_settings()
        return cls(
            get_redis(), daily_quota=settings.sam_gov_daily_quota, reserve=settings.sam_gov_quota_reserve
        )

    def key(self, now: datetime | None = None) -> str:
        """Today's counter (``jobs:samgov:quota:YYYY-MM-DD``, the UTC date)."""
        day = (now or self.clock()).astimezone(UTC).date().isoformat()
        return platform_key(self.key_prefix, day)

    def limit(self, purpose: Purpose) -> int:
        """How far ``purpose`` may take today's counter."""
        return self.daily_quota if purpose == "on_demand" else self.daily_quota - self.reserve

    def spend(self, purpose: Purpose, n: int = 1) -> int:
        """Count ``n`` requests about to be sent and return what is left for ``purpose``, atomically.

        Raises :class:`QuotaReserved` (``retry_after`` = seconds to 00:00 UTC) without counting anything when
        the spend would take the counter past ``purpose``'s limit.
        """
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}")
        now = self.clock()
        limit = self.limit(purpose)
        allowed, used = self._spend(keys=[self.key(now)], args=[n, limit, KEY_TTL_S])
        self._publish(int(used))
        if not allowed:
            wait = seconds_to_utc_midnight(now)
            what = (
                "the daily quota is spent" if purpose == "on_demand" else "the rest is the on-demand reserve"
            )
            raise QuotaReserved(
                wait,
                f"SAM.gov budget: {int(used)} of {self.daily_quota} requests used today and {what}; "
                f"waiting {wait:.0f} s for 00:00 UTC",
            )
        return limit - int(used)

    def exhaust(self) -> None:
        """Mark today's quota as spent (SAM.gov answered 429), so no worker sends another request today."""
        used = self._exhaust(keys=[self.key()], args=[self.daily_quota, KEY_TTL_S])
        self._publish(int(used))

    def used_today(self) -> int:
        """Requests counted so far this UTC day."""
        raw = self.redis.get(self.key())
        return int(raw) if raw else 0

    def remaining(self, purpose: Purpose = "on_demand") -> int:
        """Requests ``purpose`` may still send today (the whole remaining quota for on-demand work)."""
        return max(self.limit(purpose) - self.used_today(), 0)

    def _publish(self, used: int) -> None:
        from app.metrics import SAMGOV_QUOTA_REMAINING

        SAMGOV_QUOTA_REMAINING.set(max(self.daily_quota - used, 0))
