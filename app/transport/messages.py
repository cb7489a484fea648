"""What a worker's message proxy carries beyond the message's public fields.

Dramatiq's worker hands middleware a ``MessageProxy``: the ``Message`` itself and the exception of a failed
attempt are private attributes of it (``after_nack`` gets no exception argument). Middleware reads them through
these two functions, so that only this package depends on the proxy's layout.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Message
from dramatiq.broker import MessageProxy


def message_of(proxy: MessageProxy) -> Message[Any]:
    """The message behind ``proxy`` (its options are the proxy's, shared, as middleware updated them)."""
    message: Message[Any] = proxy._message
    return message


def exception_of(proxy: MessageProxy) -> BaseException | None:
    """The exception of the attempt that failed, as the worker stuffed it into the proxy; None if it succeeded."""
    return getattr(proxy, "_exception", None)
