"""Sentry: one error event per dead letter; the attempts that were retried become its breadcrumbs.

Dramatiq's Sentry integration reports every failed attempt as an error and copies arguments into events; this
middleware reports only what needs a human (a dead letter), grouped by actor and exception type. Scrubbing of
secrets and addresses happens in :mod:`app.observability`'s ``before_send``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sentry_sdk
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from app.middleware.outcome import attempt
from app.transport.messages import exception_of

#: Failed attempts remembered per message (the newest), in its options as ``failed_attempts``.
MAX_REMEMBERED_FAILURES = 20


class SentryReporting(Middleware):
    """Failures travel with the message, not with a thread.

    A retry may run on another thread or process, and acks/nacks run on the consumer thread, so breadcrumbs kept
    in Sentry's per-thread scope would miss the final event or leak into another message's. Instead each failed
    attempt is appended to the message's options (before the retry policy re-enqueues it: ``after_*`` hooks run
    in reverse stack order), and the dead letter's event is built from them in a fresh scope.
    """

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        failures = list(message.options.get("failed_attempts") or [])[-(MAX_REMEMBERED_FAILURES - 1) :]
        failures.append(
            {
                "attempt": attempt(message),
                "error": type(exception).__qualname__,
                "at": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        message.options["failed_attempts"] = failures

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        exception = exception_of(message)
        exc_type = type(exception).__qualname__ if exception else "Unknown"
        retried = list(message.options.get("failed_attempts") or [])[:-1]  # the last one is the dead attempt
        with sentry_sdk.new_scope() as scope:
            scope.clear_breadcrumbs()
            for failure in retried:
                scope.add_breadcrumb(
                    category="job.retry",
                    level="warning",
                    message=f"{message.actor_name} attempt {failure['attempt']} failed: {failure['error']}",
                    timestamp=dt.datetime.fromisoformat(failure["at"]),
                )
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
