"""Reading the email queue in Redis from a test: what was enqueued, and whether the worker is done."""

from __future__ import annotations

import json
from typing import Any

import redis


def enqueued(client: redis.Redis, queue: str = "email") -> list[dict[str, Any]]:
    """The decoded messages waiting on ``queue``, oldest first."""
    ids = client.lrange(f"dramatiq:{queue}", 0, -1)
    bodies = client.hmget(f"dramatiq:{queue}.msgs", ids) if ids else []
    return [json.loads(body) for body in bodies if body]


def delayed(client: redis.Redis, queue: str = "email") -> list[dict[str, Any]]:
    """The decoded messages on ``queue``'s delay queue (retries waiting for their time), fetched or not."""
    return [json.loads(body) for body in client.hvals(f"dramatiq:{queue}.DQ.msgs")]


def drained(client: redis.Redis, queue: str = "email") -> bool:
    """Nothing ready, delayed or in progress on ``queue`` (retries included)."""
    if client.llen(f"dramatiq:{queue}") or client.llen(f"dramatiq:{queue}.DQ"):
        return False
    for key in client.scan_iter(match="dramatiq:__acks__.*"):
        name = key.decode()
        if name.endswith((f".{queue}", f".{queue}.DQ")) and client.scard(key):
            return False
    return True
