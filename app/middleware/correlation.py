"""Correlation id: set from each message while it runs, and copied into every message enqueued meanwhile."""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from dramatiq import Broker, Message, Middleware
from dramatiq.broker import MessageProxy

from app import correlation


class CorrelationId(Middleware):
    """A child job inherits its parent's id, so one request's whole tree of jobs shares one id in the logs."""

    def __init__(self) -> None:
        self._tokens = threading.local()

    def before_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        if "correlation_id" not in message.options:
            message.options["correlation_id"] = correlation.current() or message.message_id

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        value = message.options.get("correlation_id") or message.message_id
        self._tokens.token = correlation.set_current(value)

    def after_process_message(self, broker: Broker, message: MessageProxy, **_: Any) -> None:
        self._reset()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._reset()

    def _reset(self) -> None:
        token: contextvars.Token[str | None] | None = getattr(self._tokens, "token", None)
        if token is not None:
            correlation.reset(token)
            self._tokens.token = None
