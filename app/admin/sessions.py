"""Server-side admin sessions in Redis: the cookie holds only a signed random id.

Because the session lives in Redis, deleting it ends it at once on every admin replica: logout, a password
change (the session keeps a fingerprint of the password it was opened with, see
:func:`app.admin.auth.session_still_valid`) and ``jobs admin sessions revoke``. A session also ends after
``ADMIN_SESSION_IDLE_S`` without a request (the key's TTL) and ``ADMIN_SESSION_MAX_AGE_S`` after it opened,
however busy.

Keys (platform Redis, ``REDIS_URL``):

- ``jobs:admin:session:<sha256 of the id>``: ``{"created": epoch, "data": {...}}`` with a TTL. Redis holds a
  hash of the id, not the id, so reading Redis does not hand out working cookies.
- ``jobs:admin:sessions``: sorted set of those digests scored by their absolute expiry, so revoking costs
  O(sessions) rather than a SCAN of a keyspace that holds millions of other keys.

:class:`SessionMiddleware` gives routes ``request.session`` (a plain dict) as Starlette's did, so routes and
the dependencies in :mod:`app.admin.deps` read and write it the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import anyio.to_thread
import redis
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.redis_client import platform_key

logger = logging.getLogger(__name__)

#: Name of the session cookie (a signed random id).
SESSION_COOKIE = "jobs_admin_session"
#: Sorted set of live session digests scored by absolute expiry.
SESSIONS_INDEX = platform_key("admin", "sessions")
#: Seconds of idle time a session may lose before a request renews its TTL (saves a write per request).
RENEW_SLACK_S = 60
#: Scope key a route sets (through :func:`rotate`) to get a fresh id: a login never keeps the old one.
ROTATE = "jobs.admin.session_rotate"

Data = dict[str, Any]
#: ``validate(data)`` says whether a stored session may still be used (false ends it).
Validator = Callable[[Data], bool]


def session_key(digest: str) -> str:
    return platform_key("admin", "session", digest)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Timeouts:
    idle_s: int
    max_age_s: int


class SessionStore:
    """Load, save and delete sessions by id; all methods are blocking Redis calls."""

    def __init__(self, client: Callable[[], redis.Redis[bytes]], timeouts: Timeouts) -> None:
        self.client = client
        self.timeouts = timeouts

    def _ttl(self, created: float, now: float) -> int:
        return max(1, int(min(self.timeouts.idle_s, created + self.timeouts.max_age_s - now)))

    def load(self, session_id: str) -> tuple[float, Data] | None:
        """``(created, data)``, or None when missing, past its maximum age or unreadable.

        Loading is using: the idle timeout starts again (renewed only when :data:`RENEW_SLACK_S` of it has
        passed, so most requests cost one round trip)."""
        key = session_key(_digest(session_id))
        pipe = self.client().pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = pipe.execute()
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            created, data = float(record["created"]), record["data"]
        except (ValueError, KeyError, TypeError):
            logger.warning("admin session unreadable: dropped", extra={"action": "security.session_dropped"})
            self.delete(session_id)
            return None
        now = time.time()
        if not isinstance(data, dict) or now >= created + self.timeouts.max_age_s:
            self.delete(session_id)
            return None
        wanted = self._ttl(created, now)
        if int(ttl) < wanted - RENEW_SLACK_S:
            self.client().expire(key, wanted)
        return created, data

    def save(self, session_id: str, created: float, data: Data) -> None:
        now = time.time()
        digest = _digest(session_id)
        pipe = self.client().pipeline(transaction=False)
        pipe.set(
            session_key(digest), json.dumps({"created": created, "data": data}), ex=self._ttl(created, now)
        )
        pipe.zadd(SESSIONS_INDEX, {digest: created + self.timeouts.max_age_s})
        pipe.zremrangebyscore(SESSIONS_INDEX, "-inf", now)
        pipe.execute()

    def delete(self, session_id: str) -> None:
        digest = _digest(session_id)
        pipe = self.client().pipeline(transaction=False)
        pipe.delete(session_key(digest))
        pipe.zrem(SESSIONS_INDEX, digest)
        pipe.execute()


def revoke(client: redis.Redis[bytes], *, user: str | None = None) -> int:
    """End every live session (or only ``user``'s); returns how many ended. ``jobs admin sessions revoke``."""
    digests = [d.decode() for d in client.zrangebyscore(SESSIONS_INDEX, time.time(), "+inf")]
    if user is not None and digests:
        bodies = client.mget([session_key(d) for d in digests])
        digests = [d for d, body in zip(digests, bodies, strict=True) if body and _user_of(body) == user]
    if not digests:
        return 0
    pipe = client.pipeline(transaction=False)
    for digest in digests:
        pipe.delete(session_key(digest))
    pipe.zrem(SESSIONS_INDEX, *digests)
    ended = pipe.execute()
    return sum(int(n) for n in ended[:-1])


def _user_of(body: bytes) -> str | None:
    try:
        user = json.loads(body)["data"].get("user")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return user if isinstance(user, str) else None


def rotate(request: HTTPConnection) -> None:
    """Give this request's session a new id when the response is sent (the old one is deleted)."""
    request.scope[ROTATE] = True


class _Cookie:
    """``<id>.<hmac>``: a cookie not signed with ``ADMIN_SESSION_SECRET`` never reaches Redis."""

    def __init__(self, secret: str) -> None:
        self.key = secret.encode()

    def sign(self, session_id: str) -> str:
        mac = hmac.new(self.key, session_id.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{session_id}.{mac}"

    def unsign(self, value: str) -> str | None:
        session_id = value.partition(".")[0]
        if not session_id or len(value) > 200:
            return None
        return session_id if hmac.compare_digest(self.sign(session_id), value) else None


class SessionMiddleware:
    """``scope["session"]`` from Redis; saved, rotated or deleted when the response starts (pure ASGI).

    Redis being down answers 503, like every other admin read, rather than a 500.
    """

    def __init__(self, app: ASGIApp, *, store: SessionStore, secret: str, validate: Validator) -> None:
        self.app = app
        self.store = store
        self.cookie = _Cookie(secret)
        self.validate = validate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session_id = self._cookie_id(scope)
        loaded: tuple[float, Data] | None = None
        try:
            if session_id is not None:
                loaded = await anyio.to_thread.run_sync(self._load_valid, session_id)
        except redis.RedisError as err:
            await _unavailable(send, err)
            return
        original: Data = dict(loaded[1]) if loaded else {}
        scope["session"] = dict(original)
        had_cookie = session_id is not None

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie: str | None = None
                if scope["session"] != original or scope.get(ROTATE):
                    cookie = await anyio.to_thread.run_sync(
                        self._persist, scope, session_id if loaded else None, loaded, original
                    )
                if cookie is not None or (had_cookie and not loaded):
                    headers = MutableHeaders(scope=message)
                    headers.append("set-cookie", self._set_cookie(scope, cookie))
            await send(message)

        await self.app(scope, receive, send_with_session)

    def _cookie_id(self, scope: Scope) -> str | None:
        raw = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
        return self.cookie.unsign(raw) if raw else None

    def _load_valid(self, session_id: str) -> tuple[float, Data] | None:
        loaded = self.store.load(session_id)
        if loaded is not None and not self.validate(loaded[1]):
            logger.info("admin session ended: no longer valid", extra={"action": "security.session_ended"})
            self.store.delete(session_id)
            return None
        return loaded

    def _persist(
        self, scope: Scope, session_id: str | None, loaded: tuple[float, Data] | None, original: Data
    ) -> str | None:
        """Write what the route left in the session; the cookie value to set, "" to clear, None to leave."""
        data: Data = scope["session"]
        if session_id is not None and loaded is not None:
            if not data:
                self.store.delete(session_id)
                return ""
            if scope.get(ROTATE):
                self.store.delete(session_id)
            else:
                self.store.save(session_id, loaded[0], data)
                return None
        if not data:
            return None
        fresh = secrets.token_urlsafe(32)
        self.store.save(fresh, time.time(), data)
        return self.cookie.sign(fresh)

    def _set_cookie(self, scope: Scope, value: str | None) -> str:
        cookie: SimpleCookie = SimpleCookie()
        cookie[SESSION_COOKIE] = value or ""
        morsel = cookie[SESSION_COOKIE]
        morsel["path"] = (str(scope.get("root_path", "")).rstrip("/") or "") + "/"
        morsel["httponly"] = True
        morsel["samesite"] = "strict"
        morsel["max-age"] = self.store.timeouts.max_age_s if value else 0
        if scope.get("scheme") == "https":
            morsel["secure"] = True
        return morsel.OutputString()


async def _unavailable(send: Send, err: redis.RedisError) -> None:
    logger.warning("admin session store unavailable", extra={"error": type(err).__name__})
    body = json.dumps({"detail": f"Redis is unavailable ({type(err).__name__})"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
