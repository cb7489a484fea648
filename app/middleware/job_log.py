"""One structured log line per attempt, with the job's fields bound into every line the actor logs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import structlog
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from app.middleware.outcome import SKIPPED, attempt, outcome

#: A stdlib logger on purpose: this line is written once per attempt, and the stdlib path (rendered on the log
#: writer thread) costs about half of structlog's bound-logger path on the job thread.
logger = logging.getLogger("app.jobs")

_JOB_FIELDS = ("queue", "actor", "message_id", "attempt")


class JobLog(Middleware):
    """Binds queue, actor, message id and attempt; logs ``job finished`` with duration and outcome."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        structlog.contextvars.bind_contextvars(
            queue=message.queue_name.removesuffix(".DQ"),
            actor=message.actor_name,
            message_id=message.message_id,
            attempt=attempt(message),
        )
        self._local.started = time.perf_counter()

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        status = outcome(message, exception)
        level = logging.INFO if exception is None else logging.WARNING if status != "dead" else logging.ERROR
        fields: dict[str, Any] = {"outcome": status, "duration_ms": self._elapsed_ms()}
        if exception is not None:
            fields["error_type"] = type(exception).__qualname__
            fields["error"] = str(exception)[:500]
        logger.log(level, "job finished", extra=fields)
        structlog.contextvars.unbind_contextvars(*_JOB_FIELDS)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        logger.info("job finished", extra={"outcome": SKIPPED, "duration_ms": self._elapsed_ms()})
        structlog.contextvars.unbind_contextvars(*_JOB_FIELDS)

    def _elapsed_ms(self) -> float:
        started = getattr(self._local, "started", None)
        return round((time.perf_counter() - started) * 1000, 2) if started else 0.0
