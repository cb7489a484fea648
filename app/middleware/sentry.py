"""Sentry: one error event per dead letter, a breadcrumb per retried attempt.

Dramatiq's Sentry integration reports every failed attempt as an error and copies arguments into events; this
middleware reports only what needs a human (a dead letter), grouped by actor and exception type. Scrubbing of
secrets and addresses happens in :mod:`app.observability`'s ``before_send``.
"""

from __future__ import annotations

import threading
from typing import Any

import sentry_sdk
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from app.middleware.outcome import RETRYING, attempt, outcome


class SentryReporting(Middleware):
    """Stacked after the retry policy, so ``after_process_message`` runs before the retry decision (hooks run
    in reverse): a failed attempt's breadcrumb is held until the message is acked (a retry was scheduled) and
    dropped when it is nacked (dead: the one error event reports it)."""

    def __init__(self) -> None:
        self._pending = threading.local()

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._pending.crumb = None
        if exception is not None and outcome(message, exception) == RETRYING:
            self._pending.crumb = (
                message.message_id,
                f"{message.actor_name} attempt {attempt(message)} failed: {type(exception).__qualname__}",
            )

    def after_ack(self, broker: Broker, message: MessageProxy) -> None:
        pending: tuple[str, str] | None = getattr(self._pending, "crumb", None)
        self._pending.crumb = None
        if pending is not None and pending[0] == message.message_id:
            sentry_sdk.add_breadcrumb(category="job.retry", level="warning", message=pending[1])

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        self._pending.crumb = None
        exception = getattr(message, "_exception", None)
        exc_type = type(exception).__qualname__ if exception else "Unknown"
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("queue", message.queue_name.removesuffix(".DQ"))
            scope.set_tag("actor", message.actor_name)
            scope.set_tag("message_id", message.message_id)
            scope.set_tag("correlation_id", message.options.get("correlation_id") or "")
            scope.set_tag("attempt", str(attempt(message)))
            scope.set_tag("dead_reason", str(message.options.get("dead_reason") or "failed"))
            scope.fingerprint = ["dead-letter", message.actor_name, exc_type]
            if exception is not None:
                sentry_sdk.capture_exception(exception)
            else:
                sentry_sdk.capture_message(f"{message.actor_name} dead-lettered", level="error")
