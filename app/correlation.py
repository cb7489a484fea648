"""The correlation id of the work in progress: one id follows a request through every job it causes.

It lives in a context variable: the worker middleware sets it from the message, the enqueue helpers copy it
into every message they send, and structlog binds it into every log line.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def current() -> str | None:
    """The correlation id in force, if any."""
    return _current.get()


def new_id() -> str:
    return uuid.uuid4().hex


def set_current(correlation_id: str | None) -> contextvars.Token[str | None]:
    """Make ``correlation_id`` current and bind it into log lines; returns a token for :func:`reset`."""
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    return _current.set(correlation_id)


def reset(token: contextvars.Token[str | None]) -> None:
    _current.reset(token)
    structlog.contextvars.bind_contextvars(correlation_id=_current.get())


@contextmanager
def correlated(correlation_id: str | None = None) -> Iterator[str]:
    """Run a block under ``correlation_id`` (a new one when not given), e.g. a web request or a CLI command."""
    value = correlation_id or current() or new_id()
    token = set_current(value)
    try:
        yield value
    finally:
        reset(token)
