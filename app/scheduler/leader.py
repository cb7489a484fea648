"""The leader lock: one scheduler replica fires, the others stand by.

A redis-py ``Lock`` on ``jobs:scheduler:leader`` with a TTL (``SCHEDULER_LOCK_TTL_S``), renewed every
``SCHEDULER_LOCK_RENEW_S`` by the leader and tried every :data:`STANDBY_POLL_S` by each standby. The leader
believes it leads only until its last successful renewal plus the TTL (measured on its own monotonic clock,
minus a margin), and stops at the first renewal that fails: Redis unreachable, or the key gone or someone
else's (a Redis restart that lost it). A killed leader is replaced within the TTL; a stopping one deletes the
lock and is replaced within :data:`STANDBY_POLL_S`.

The lock is an optimisation, not the guarantee: two replicas that both believe they lead (a paused process, a
Redis failover) still send each fire once, because each fire is claimed in PostgreSQL first (``fire.py``).
"""

from __future__ import annotations

import logging
import time

import redis
from redis.lock import Lock

from app import metrics
from app.redis_client import get_redis, platform_key

logger = logging.getLogger(__name__)

#: The lock's key.
LEADER_KEY = platform_key("scheduler", "leader")
#: How often a standby tries to take the lock: a lock released by a stopping leader is taken within it.
STANDBY_POLL_S = 0.5
#: Part of the TTL the leader does not count on (the renewal's own round trip, clock rate differences).
SAFETY = 0.2


class LeaderLock:
    """Acquire, renew and release the leader lock; :meth:`leading` says whether this replica may fire now."""

    def __init__(
        self, replica: str, *, ttl_s: float, renew_s: float, client: redis.Redis[bytes] | None = None
    ) -> None:
        self.replica = replica
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self._client = client
        self._lock: Lock | None = None
        self._valid_until = 0.0
        self._next_attempt = 0.0
        metrics.SCHEDULER_LEADER.labels(replica).set(0)

    @property
    def client(self) -> redis.Redis[bytes]:
        return self._client or get_redis()

    def leading(self) -> bool:
        """True while the last renewal is recent enough; never talks to Redis."""
        return self._lock is not None and time.monotonic() < self._valid_until

    def refresh(self) -> bool:
        """Renew (leader) or try to take (standby) the lock when it is time; returns :meth:`leading`."""
        now = time.monotonic()
        if self._lock is not None and not self.leading():
            self._lose("lease ran out before it could be renewed")
        if now < self._next_attempt:
            return self.leading()
        if self._lock is None:
            self._next_attempt = now + min(self.renew_s, STANDBY_POLL_S)
            self._acquire(now)
        else:
            self._next_attempt = now + self.renew_s
            self._renew(now)
        if self._lock is not None:
            self._next_attempt = now + self.renew_s  # just acquired: next is a renewal
        return self.leading()

    def seconds_to_next_attempt(self) -> float:
        return max(0.0, self._next_attempt - time.monotonic())

    def release(self) -> None:
        """Give up leadership at once (SIGTERM): a standby takes over on its next attempt, not after the TTL."""
        lock, self._lock = self._lock, None
        self._valid_until = 0.0
        metrics.SCHEDULER_LEADER.labels(self.replica).set(0)
        if lock is None:
            return
        try:
            lock.release()
        except (redis.RedisError, redis.exceptions.LockError) as err:
            logger.warning(
                "leader lock not released",
                extra={"action": "leader_release_failed", "error": type(err).__name__},
            )
            return
        logger.info("leadership released", extra={"action": "leader_released", "replica": self.replica})

    def _acquire(self, started: float) -> None:
        lock = Lock(self.client, LEADER_KEY, timeout=self.ttl_s, blocking=False, thread_local=False)
        try:
            acquired = lock.acquire(token=self.replica.encode())
        except redis.RedisError:
            return
        if acquired:
            self._lock = lock
            self._valid_until = started + self.ttl_s * (1 - SAFETY)
            metrics.SCHEDULER_LEADER.labels(self.replica).set(1)
            logger.info("leadership acquired", extra={"action": "leader_acquired", "replica": self.replica})

    def _renew(self, started: float) -> None:
        assert self._lock is not None
        try:
            self._lock.reacquire()
        except redis.exceptions.LockError:
            self._lose("lock lost (expired or taken)")
            return
        except redis.RedisError as err:
            self._lose(f"Redis unreachable ({type(err).__name__})")
            return
        self._valid_until = started + self.ttl_s * (1 - SAFETY)

    def _lose(self, why: str) -> None:
        self._lock = None
        self._valid_until = 0.0
        metrics.SCHEDULER_LEADER.labels(self.replica).set(0)
        logger.warning(
            "leadership lost", extra={"action": "leader_lost", "replica": self.replica, "reason": why}
        )
