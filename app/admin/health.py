"""Unauthenticated endpoints for probes and Prometheus: ``/health``, ``/health/ready``, ``/metrics``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.admin.queries import check_database, check_redis
from app.admin.schemas import HealthOut, ReadyOut
from app.constants import QUEUES
from app.metrics import render_latest
from app.redis_client import get_redis

logger = logging.getLogger(__name__)

#: Seconds each readiness check may take before the probe answers 503 anyway.
READY_TIMEOUT_S = 3.0
#: Prometheus text format the exposition uses.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter(tags=["health"])
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ready-check")


@router.get("/health", response_model=HealthOut)
def health() -> HealthOut:
    """Liveness: the process serves requests. Depends on nothing else, so a Redis outage restarts nothing."""
    return HealthOut()


@router.get("/health/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
def ready() -> JSONResponse:
    """Readiness: Redis answers PING and the database ``SELECT 1``, each within a few seconds."""
    checks = {
        "redis": _run_check(lambda: check_redis(get_redis())),
        "database": _run_check(check_database),
    }
    healthy = all(v == "ok" for v in checks.values())
    body = ReadyOut(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


def _run_check(check: Callable[[], None]) -> str:
    future = _checks.submit(check)
    try:
        future.result(timeout=READY_TIMEOUT_S)
    except FutureTimeout:
        return "timeout"
    except (redis.RedisError, SQLAlchemyError, OSError) as err:
        logger.warning("readiness check failed", extra={"error": type(err).__name__})
        return type(err).__name__
    return "ok"


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus exposition; the queue gauges are read from Redis now (left out, logged, if it is down)."""
    try:
        body = render_latest(QUEUES)
    except redis.RedisError as err:
        logger.warning("queue gauges unavailable: Redis unreachable", extra={"error": type(err).__name__})
        body = render_latest(())
    return Response(body, media_type=METRICS_CONTENT_TYPE)
