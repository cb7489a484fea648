"""``job_actor``: declares a Dramatiq actor from the job catalogue, so actors stay thin and alike.

The decorated function receives the validated argument model and calls one service function. A message whose
arguments do not validate (hand-written, or from an older release) raises ``InvalidJob`` and is dead-lettered
with the reason instead of being retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq
from dramatiq.middleware import CurrentMessage

from app.errors import InvalidJob
from app.jobs import JobArgs, spec_for

A = TypeVar("A", bound=JobArgs)


def job_actor(
    actor_name: str, **actor_options: Any
) -> Callable[[Callable[[A], None]], dramatiq.Actor[..., None]]:
    spec = spec_for(actor_name)
    if spec.max_retries is not None:
        actor_options.setdefault("max_retries", spec.max_retries)

    def decorate(handler: Callable[[A], None]) -> dramatiq.Actor[..., None]:
        def run(*args: Any, **kwargs: Any) -> None:
            if args:
                raise InvalidJob(f"{spec.actor} takes keyword arguments only, got {len(args)} positional")
            handler(spec.validate(kwargs))  # type: ignore[arg-type]

        run.__name__ = run.__qualname__ = handler.__name__
        run.__doc__ = handler.__doc__
        declared: dramatiq.Actor[..., None] = dramatiq.actor(
            actor_name=spec.actor, queue_name=spec.queue, time_limit=spec.time_limit_ms, **actor_options
        )(run)
        return declared

    return decorate


def current_message_id() -> str | None:
    """The id of the Dramatiq message being processed (None outside a worker, e.g. a test or the CLI): services
    record it so a run or a document can be traced to the message, and its retries, that made it."""
    message = CurrentMessage.get_current_message()
    return None if message is None else str(message.message_id)
