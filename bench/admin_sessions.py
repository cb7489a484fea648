"""What a server-side session (app/admin/sessions.py) costs an admin request.

In-process ASGI calls (httpx on the app, no sockets) of ``GET /admin/api/workers`` on an empty Redis database,
on the password-less admin: the baseline sends no session cookie (no session read), the other variant sends
one (one GET+TTL pipeline in a worker thread). Printed: the median time per request of each (their requests
interleaved one by one, so the load of a shared host weighs on both alike) and the throughput ratio.

    .venv/bin/python bench/admin_sessions.py --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
PATH = "/admin/api/workers"


def _client() -> httpx.AsyncClient:
    from app.admin import create_app

    app = create_app(session_secret="b" * 32)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def _run(n: int) -> dict[str, float]:
    """Median seconds per request of each variant."""
    local, with_session = _client(), _client()
    variants: list[tuple[str, httpx.AsyncClient]] = [
        ("no session (baseline)", local),
        ("Redis session (one GET+TTL per request)", with_session),
    ]
    timings: dict[str, list[float]] = {name: [] for name, _ in variants}
    await with_session.get("/admin/api/csrf")  # opens the session: its cookie goes with every request now
    for _ in range(n):
        for name, client in variants:
            started = time.perf_counter()
            response = await client.get(PATH)
            timings[name].append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    for _, client in variants:
        await client.aclose()
    return {name: statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per variant")
    args = parser.parse_args()

    import redis

    os.environ["REDIS_URL"] = REDIS_URL
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench-admin.db'}")
    os.environ["LOG_LEVEL"] = "WARNING"
    for name in ("ADMIN_PASSWORD", "ADMIN_VIEWER_PASSWORD"):
        os.environ.pop(name, None)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        medians = asyncio.run(_run(args.requests))
    finally:
        client.flushdb()
    baseline = medians["no session (baseline)"]
    print(f"GET {PATH}, {args.requests} requests per variant, interleaved, in-process; Redis {REDIS_URL}")
    for name, seconds in medians.items():
        print(
            f"  {name:<42} median {seconds * 1e6:6.0f} µs   +{(seconds - baseline) * 1e6:4.0f} µs"
            f"   throughput ratio {baseline / seconds:.2f}"
        )


if __name__ == "__main__":
    main()
