"""The outcome of one attempt, as metrics, history and logs all name it."""

from __future__ import annotations

from dramatiq.broker import MessageProxy

SUCCEEDED = "succeeded"
RETRYING = "retrying"
DEAD = "dead"
SKIPPED = "skipped"


def outcome(message: MessageProxy, exception: BaseException | None) -> str:
    """Valid in ``after_process_message`` of middleware stacked before the retry policy (it runs later)."""
    if exception is None:
        return SUCCEEDED
    return DEAD if message.failed else RETRYING


def attempt(message: MessageProxy) -> int:
    """1 for the first delivery; retries that spent an attempt increase it."""
    return int(message.options.get("retries", 0)) + 1
