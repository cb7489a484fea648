"""The JSON shapes of ``/admin/api/sync/...`` (and of ``jobs sync status --json``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict


class SyncPartitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    posted_from: dt.date
    posted_to: dt.date
    status: str
    attempts: int
    pages: int
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    invalid: int
    requests_spent: int
    error: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class SyncRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    mode: str | None
    posted_from: dt.date | None
    posted_to: dt.date | None
    partitions_total: int
    partitions_done: int
    partitions_failed: int
    pages: int
    records_seen: int
    inserted: int
    updated: int
    unchanged: int
    invalid: int
    requests_spent: int
    error: str | None
    correlation_id: str | None
    params: dict[str, Any]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    alert_sent_at: dt.datetime | None


class SyncRunDetailOut(SyncRunOut):
    partitions: list[SyncPartitionOut]


class QuotaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    daily_quota: int
    used_today: int
    reserve: int
    remaining_scheduled: int
    remaining_on_demand: int


class SyncOverviewOut(BaseModel):
    quota: QuotaOut | None
    runs: list[SyncRunOut]


class RetriedOut(BaseModel):
    run_id: int
    retried: int
    partition_ids: list[int]
