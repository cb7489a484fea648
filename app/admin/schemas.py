"""The JSON shapes of ``/admin/api/``: they make the OpenAPI document, so clients can rely on them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="redis/database: 'ok' or the error class that failed")


class QueueOut(BaseModel):
    queue: str
    ready: int
    delayed: int
    in_progress: int
    dead: int = Field(description="dead_archived + dead_in_xq")
    dead_archived: int = Field(description="rows of dead_letters with status dead")
    dead_in_xq: int = Field(description="messages still in Dramatiq's XQ, not imported yet")
    oldest_age_seconds: float
    throughput_last_hour: int = Field(description="job_runs finished in the last hour, any outcome")
    failed_last_hour: int
    workers: int
    worker_hosts: list[str]


class WorkerOut(BaseModel):
    host: str
    pid: int
    queues: list[str]
    threads: int
    started: dt.datetime | None
    uptime_s: float | None
    expires_in_s: int | None


class DocumentProgressOut(BaseModel):
    """A documents job's ``documents`` row: the file it is writing and how far it got."""

    model_config = ConfigDict(from_attributes=True)

    request_id: str
    status: str
    progress: int


class JobRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    message_id: str
    queue: str
    actor: str
    status: str
    attempts: int
    enqueued_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_ms: float | None
    error: str | None
    correlation_id: str | None
    args_text: str
    #: Documents-queue jobs only.
    document: DocumentProgressOut | None = None


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: str
    queue: str
    actor: str
    reason: str
    exception_type: str
    exception_message: str
    fingerprint: str
    attempts: int
    correlation_id: str | None
    idempotency_key: str | None
    status: str
    enqueued_at: dt.datetime | None
    failed_at: dt.datetime
    requeued_at: dt.datetime | None
    requeued_by: str | None
    requeued_message_id: str | None
    discarded_at: dt.datetime | None
    discarded_by: str | None


class DeadLetterDetailOut(DeadLetterOut):
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    traceback: str | None
    raw_payload: str | None
    archived_at: dt.datetime


class DeadLetterGroupOut(BaseModel):
    fingerprint: str
    queue: str
    actor: str
    exception_type: str
    count: int
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime
    latest_id: int
    latest_message: str


class DeadLetterListOut(BaseModel):
    groups: list[DeadLetterGroupOut]
    items: list[DeadLetterOut]


#: A row id: BIGINT range (a larger one is a 422 rather than a database error).
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
#: A filter value of a selection: longer than any real one, short of abuse.
FilterText = Annotated[str, Field(max_length=500)]


class DeadLetterSelection(BaseModel):
    """Which dead letters to act on: ``ids``, or a filter naming at least one of queue/actor/fingerprint/type.

    Only letters with status ``dead`` are touched; an empty selection is refused rather than meaning "all".
    """

    model_config = ConfigDict(extra="forbid")

    ids: list[RowId] = Field(default_factory=list, max_length=10_000)
    queue: FilterText | None = None
    actor: FilterText | None = None
    fingerprint: FilterText | None = None
    exception_type: FilterText | None = None

    @model_validator(mode="after")
    def _not_everything(self) -> DeadLetterSelection:
        if not (self.ids or self.queue or self.actor or self.fingerprint or self.exception_type):
            raise ValueError("give ids or at least one of queue, actor, fingerprint, exception_type")
        return self


class RequeuedOut(BaseModel):
    requeued: int
    messages: list[dict[str, int | str]] = Field(description="[{id, new_message_id}]")


class DiscardedOut(BaseModel):
    discarded: int


class CsrfOut(BaseModel):
    csrf_token: str
    header: str
    user: str
    role: str
