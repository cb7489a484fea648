"""Record every attempt in ``job_runs`` through the batching :class:`~app.history.HistoryWriter`."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

from dramatiq import Broker, Middleware, Worker
from dramatiq.broker import MessageProxy

from app.db.types import utcnow
from app.history import HistoryWriter, JobEvent
from app.middleware.outcome import SKIPPED, attempt, outcome


class JobHistory(Middleware):
    def __init__(self, writer: HistoryWriter | None = None) -> None:
        self.writer = writer or HistoryWriter()
        self._local = threading.local()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.writer.stop()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self._local.started = time.perf_counter()
        self.writer.record(
            self._event(
                message,
                "running",
                started_at=utcnow(),
                enqueued_at=dt.datetime.fromtimestamp(message.message_timestamp / 1000, dt.UTC),
                args_text=json.dumps({"args": list(message.args), "kwargs": message.kwargs}, default=str)[
                    :4000
                ],
            )
        )

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        error = None if exception is None else f"{type(exception).__qualname__}: {exception}"[:2000]
        self.writer.record(self._finished(message, outcome(message, exception), error))

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.writer.record(self._finished(message, SKIPPED, None))

    def _finished(self, message: MessageProxy, status: str, error: str | None) -> JobEvent:
        started = getattr(self._local, "started", None)
        duration = (time.perf_counter() - started) * 1000 if started else None
        return self._event(message, status, finished_at=utcnow(), duration_ms=duration, error=error)

    @staticmethod
    def _event(message: MessageProxy, status: str, **fields: Any) -> JobEvent:
        return JobEvent(
            message_id=message.message_id,
            queue=message.queue_name.removesuffix(".DQ"),
            actor=message.actor_name,
            status=status,
            attempts=attempt(message),
            correlation_id=message.options.get("correlation_id"),
            **fields,
        )
