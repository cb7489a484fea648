"""What a job is, independent of Dramatiq: a name, a queue and a pydantic schema for its keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.errors import InvalidJob


class JobArgs(BaseModel):
    """Base of every job's argument schema: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class JobSpec:
    """One actor's contract. ``time_limit_ms`` is Dramatiq's per-actor limit; exceeding it counts as retryable."""

    actor: str
    queue: str
    args: type[JobArgs]
    time_limit_ms: int = 10 * 60 * 1000
    max_retries: int | None = None
    #: The service claims the message's ``idempotency_key`` in a durable table before its side effect (the
    #: emails in ``email_log``), so the Redis done-mark of the Idempotency middleware would only repeat it, at
    #: two Redis round trips per message.
    claims_own_key: bool = False

    def validate(self, kwargs: dict[str, Any]) -> JobArgs:
        """Parse ``kwargs``; raises :class:`InvalidJob` naming each bad field.

        Parsing is pydantic's lax mode on purpose: messages and ``jobs enqueue`` carry JSON and text (ISO dates
        as strings), and the same schema must accept what the call site produced.
        """
        try:
            return self.args.model_validate(kwargs)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in err.errors(include_url=False)
            )
            raise InvalidJob(f"invalid arguments for {self.actor}: {problems}") from None

    def encode(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Validate and return the JSON-safe kwargs to put in the message."""
        return self.validate(kwargs).model_dump(mode="json")
