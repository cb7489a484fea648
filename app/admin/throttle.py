"""Login throttling, counted in Redis so that it holds across admin replicas.

Failures are counted per client address and per user name (only the two real ones, ``admin`` and ``viewer``:
counting every name an attacker invents would let them fill Redis). From the ``ADMIN_LOGIN_MAX_FAILURES``-th
failure on, each failure locks that client and that user for ``ADMIN_LOGIN_LOCKOUT_S`` × 2^(failures − max),
at most :data:`MAX_LOCKOUT_S`. While locked, every attempt is refused with 429 and ``Retry-After`` before the
password is even compared, right or wrong, and is not counted. Counters are forgotten
:data:`FAILURE_MEMORY_S` after the last failure; a successful login clears its user's counter (not the
client's: the viewer password must not reset the count against ``admin``).

A per-user lock lets anyone lock ``admin`` out for a while by failing on purpose; the delay is bounded, HTTP
Basic and the form share the count, and each lock is logged.

Keys: ``jobs:admin:login:fails:<ip|user>:<who>`` (a counter) and ``jobs:admin:login:lock:<ip|user>:<who>``
(exists while locked).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from app.redis_client import platform_key

#: The longest lock, however many failures.
MAX_LOCKOUT_S = 15 * 60
#: A counter is forgotten this long after its last failure.
FAILURE_MEMORY_S = 3600
#: Users whose failures are counted (the fixed logins of :mod:`app.admin.auth`).
COUNTED_USERS = ("admin", "viewer")


@dataclass(frozen=True)
class Policy:
    max_failures: int
    lockout_s: int

    def lock_for(self, failures: int) -> int:
        """Seconds to lock after the ``failures``-th failure (0 below the threshold)."""
        if failures < self.max_failures:
            return 0
        return int(min(MAX_LOCKOUT_S, self.lockout_s * 2 ** min(failures - self.max_failures, 32)))


def _subjects(client_ip: str, user: str) -> list[tuple[str, str]]:
    subjects = [("ip", client_ip[:64])]
    if user in COUNTED_USERS:
        subjects.append(("user", user))
    return subjects


def locked_for(client: redis.Redis[bytes], *, client_ip: str, user: str) -> int:
    """Seconds until this client and user may try again (0: now)."""
    pipe = client.pipeline(transaction=False)
    for kind, who in _subjects(client_ip, user):
        pipe.pttl(platform_key("admin", "login", "lock", kind, who))
    remaining_ms = [int(ms) for ms in pipe.execute() if int(ms) > 0]
    return -(-max(remaining_ms) // 1000) if remaining_ms else 0


def record_failure(client: redis.Redis[bytes], policy: Policy, *, client_ip: str, user: str) -> int:
    """Count a failed login; returns the seconds it locks for (0 when still under the threshold)."""
    subjects = _subjects(client_ip, user)
    pipe = client.pipeline(transaction=False)
    for kind, who in subjects:
        key = platform_key("admin", "login", "fails", kind, who)
        pipe.incr(key)
        pipe.expire(key, FAILURE_MEMORY_S)
    counts = pipe.execute()[0::2]
    lock = 0
    pipe = client.pipeline(transaction=False)
    for (kind, who), count in zip(subjects, counts, strict=True):
        seconds = policy.lock_for(int(count))
        if seconds:
            pipe.set(platform_key("admin", "login", "lock", kind, who), b"1", ex=seconds)
            lock = max(lock, seconds)
    pipe.execute()
    return lock


def record_success(client: redis.Redis[bytes], *, user: str) -> None:
    client.delete(platform_key("admin", "login", "fails", "user", user))
