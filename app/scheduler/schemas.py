"""The JSON shapes of ``/admin/api/schedules`` (and of ``jobs schedules ... --json``): the OpenAPI document
describes them, so scripts can rely on them. Built from :mod:`app.scheduler.state`'s dataclasses."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class ScheduleOut(BaseModel):
    """One schedule as the scheduler sees it now (times in UTC)."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    target_actor: str
    trigger: str = Field(description="the trigger in APScheduler's words, after SCHEDULES_FILE overrides")
    enabled: bool = Field(description="false when the table or SCHEDULES_FILE disables it")
    paused: bool = Field(description="paused by an operator; persists across restarts and replicas")
    next_fire: dt.datetime | None
    last_fire: dt.datetime | None
    last_status: str | None = Field(
        description="status of the last schedule_runs row (enqueued, missed, ...)"
    )
    last_lag_s: float | None = Field(
        description="seconds between the last fire's scheduled time and its enqueue"
    )
    last_outcome: str | None = Field(description="job_runs status of the last emitted job, when known")
    missed_count: int = Field(description="fires recorded as missed (outside their grace time)")


class ScheduleRunOut(BaseModel):
    """One row of ``schedule_runs``: a fire, claimed before it was enqueued."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    fire_time: dt.datetime
    status: str = Field(description="claimed, enqueued, skipped, missed, failed or manual")
    reason: str | None = Field(description="why a fire was skipped or failed")
    message_id: str | None
    lag_s: float | None
    enqueued_at: dt.datetime | None
    replica: str | None = Field(description="the scheduler replica (or CLI/admin process) that fired it")
    triggered_by: str | None = Field(description="the operator of a run-now, None for scheduled fires")
    outcome: str | None = Field(description="the emitted job's status in job_runs, when known")


class ScheduleChangedOut(BaseModel):
    """The schedule after a pause or a resume."""

    name: str
    paused: bool


class FiredOut(BaseModel):
    """What a run-now did: one message with its own fire time and idempotency key."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    fire_time: dt.datetime
    status: str = Field(description="manual when enqueued; skipped or failed with a reason otherwise")
    message_id: str | None
    reason: str | None
    key: str = Field(description="the idempotency key: schedule:<name>:<fire time>")
    duplicate: bool = Field(description="true if this fire had already been claimed: nothing was sent")
