"""The tables: platform bookkeeping (dead letters, history, claims, outbox) and the domain data the queues use.

Columns are chosen so that the admin can filter without JSON operators and both PostgreSQL and SQLite work.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.db.types import JsonColumn, UtcDateTime, utcnow

#: Constraint names are deterministic so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UtcDateTime(), dict[str, Any]: JsonColumn, list[Any]: JsonColumn}


# ---------------------------------------------------------------------------------------------- platform


class DeadLetter(Base):
    """A message that will not be retried. The source of truth for dead letters (not Dramatiq's XQ)."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    args: Mapped[list[Any]] = mapped_column(default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: For payloads that could not be decoded: the raw bytes as text (replacement characters where needed).
    raw_payload: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))  # failed, retries_exhausted, too_old, undecodable, ...
    exception_type: Mapped[str] = mapped_column(String(256))
    exception_message: Mapped[str] = mapped_column(Text, default="")
    traceback: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(40), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="dead", index=True)  # dead, requeued, discarded
    enqueued_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    archived_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    requeued_at: Mapped[dt.datetime | None]
    requeued_by: Mapped[str | None] = mapped_column(String(128))
    requeued_message_id: Mapped[str | None] = mapped_column(String(64))
    discarded_at: Mapped[dt.datetime | None]
    discarded_by: Mapped[str | None] = mapped_column(String(128))


class AuditEvent(Base):
    """Who changed queue state, when, and what: every requeue, discard, purge, pause and run-now."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    who: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobRun(Base):
    """The latest state of one message (all its attempts): best effort, written in batches."""

    __tablename__ = "job_runs"
    # Few indexes on purpose: every job writes a row, and each index is paid for on the hot path's database.
    __table_args__ = (Index("ix_job_runs_queue_finished_at", "queue", "finished_at"),)

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16))  # running, succeeded, retrying, dead, skipped
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    enqueued_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    duration_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: The arguments as JSON text, searchable with LIKE from the admin.
    args_text: Mapped[str] = mapped_column(Text, default="")


class EmailLog(Base):
    """One row per email idempotency key: claimed before sending, marked sent after; never sent twice."""

    __tablename__ = "email_log"

    idempotency_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    recipient: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))  # claimed, sent, skipped, failed
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    #: The Dramatiq worker (broker id) holding the claim; None outside a worker. Its death frees the claim.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    claimed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]


class ScheduleRun(Base):
    """One fire of one schedule; the unique (name, fire time) is what makes a fire happen once."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("name", "fire_time", name="uq_schedule_runs_name_fire_time"),
        Index("ix_schedule_runs_name_manual_fire_time", "name", "manual", "fire_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    fire_time: Mapped[dt.datetime]
    message_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # claimed, enqueued, manual, skipped, missed, failed
    lag_seconds: Mapped[float | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    triggered_by: Mapped[str | None] = mapped_column(String(128))
    #: Why it was skipped, missed or failed.
    reason: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[dt.datetime | None]
    #: The scheduler replica (host:pid) or process that claimed it.
    replica: Mapped[str | None] = mapped_column(String(128))
    #: Asked for by an operator (run now): not a fire of the trigger, so the leader's catch-up ignores it.
    manual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ScheduleState(Base):
    """An operator's pause of one schedule (no row: not paused); read by the leader on every fire."""

    __tablename__ = "schedule_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str | None] = mapped_column(String(128))
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Fires before it are not caught up by a leader taking over (they fell while paused).
    resumed_at: Mapped[dt.datetime | None]


class OutboxEntry(Base):
    """A message written in the caller's transaction, published by the relay after commit."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    #: The encoded Dramatiq message (JSON text).
    payload: Mapped[str] = mapped_column(Text)
    delay_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None]


class Document(Base):
    """A generated file, keyed by the request id so that a re-run replaces rather than duplicates."""

    __tablename__ = "documents"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(16))  # running, retrying, ready, failed
    #: pdf, xlsx, csv, jsonl ... (what the request asked for; ``content_type`` is what was written).
    format: Mapped[str | None] = mapped_column(String(16))
    #: 0-100, written by the running job at most every few hundred milliseconds.
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    page_count: Mapped[int | None] = mapped_column(Integer)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    #: Attempts that claimed the row (a retry or a redelivery after a crash adds one).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The message of the latest attempt, so the admin's jobs page can show its progress.
    message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    path: Mapped[str | None] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class Attachment(Base):
    """One distinct downloaded file (by sha256), processed once however many notices reference it."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    #: The safe name of the first download (``attachment_notices`` keeps each notice's own name).
    file_name: Mapped[str] = mapped_column(String(255))
    #: Sniffed from the bytes (app/documents/extract.py), not the server's header; None when unsupported.
    content_type: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int | None] = mapped_column(Integer)
    #: Relative to STORAGE_DIR; the file (``path``) and its text per page as a JSON list (``text_path``).
    path: Mapped[str | None] = mapped_column(String(500))
    text_path: Mapped[str | None] = mapped_column(String(500))
    text_chars: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # processed, failed
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AttachmentNotice(Base):
    """A notice referencing an attachment: the link that makes the sha256 dedupe work across notices."""

    __tablename__ = "attachment_notices"
    __table_args__ = (
        UniqueConstraint("notice_id", "attachment_id", name="uq_attachment_notices_notice_attachment"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id", ondelete="CASCADE"), index=True)
    #: No foreign key: an attachment may be processed before the sync has stored its notice.
    notice_id: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SyncRun(Base):
    """One synchronisation with SAM.gov and what it changed."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # opportunities, entities, analytics, cleanup
    status: Mapped[str] = mapped_column(String(16))  # running, succeeded, failed
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    pages: Mapped[int] = mapped_column(Integer, default=0)
    records_seen: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # The sync queue's bookkeeping (migration 0005; docs/sync.md).
    mode: Mapped[str | None] = mapped_column(String(16))  # incremental, range, full
    message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    posted_from: Mapped[dt.date | None] = mapped_column(Date)
    posted_to: Mapped[dt.date | None] = mapped_column(Date)
    partitions_total: Mapped[int] = mapped_column(Integer, default=0)
    #: The fan-in counter: partitions in a terminal state; the one that makes it equal the total closes the run.
    partitions_done: Mapped[int] = mapped_column(Integer, default=0)
    partitions_failed: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    requests_spent: Mapped[int] = mapped_column(Integer, default=0)
    alert_sent_at: Mapped[dt.datetime | None]


class SyncPartition(Base):
    """One date window of an opportunities run, fetched by its own message; counted into the run when terminal."""

    __tablename__ = "sync_partitions"
    __table_args__ = (UniqueConstraint("run_id", "posted_from", name="uq_sync_partitions_run_from"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"), index=True)
    posted_from: Mapped[dt.date] = mapped_column(Date)
    posted_to: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, running, succeeded, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The message of the latest attempt: a different one for a failed partition is a requeued dead letter.
    message_id: Mapped[str | None] = mapped_column(String(64))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    requests_spent: Mapped[int] = mapped_column(Integer, default=0)
    #: Where the next attempt resumes the page walk (the client's cursor after the last stored page).
    resume_offset: Mapped[int | None] = mapped_column(Integer)
    resume_mode: Mapped[str | None] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class SyncRejectedRecord(Base):
    """A record SAM.gov sent that could not be normalized: kept aside with the reason, never failing its page."""

    __tablename__ = "sync_rejected_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # opportunity, entity
    external_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class AnalyticsCount(Base):
    """Notices by one dimension (naics, agency, set_aside, week): rebuilt whole by ``refresh_analytics``."""

    __tablename__ = "analytics_counts"

    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    notices: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[int] = mapped_column(Integer, default=0)
    award_count: Mapped[int] = mapped_column(Integer, default=0)
    award_total: Mapped[Decimal] = mapped_column(Numeric(20, 2), default=Decimal(0))
    refreshed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AnalyticsDeadline(Base):
    """Active notices whose response deadline is in the coming weeks: rebuilt whole by ``refresh_analytics``."""

    __tablename__ = "analytics_deadlines"

    notice_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str | None] = mapped_column(String(256))
    naics_code: Mapped[str | None] = mapped_column(String(16))
    set_aside_code: Mapped[str | None] = mapped_column(String(32))
    response_deadline: Mapped[dt.datetime] = mapped_column(index=True)
    refreshed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------------------------------------- domain


proposal_collaborators = Table(
    "proposal_collaborators",
    Base.metadata,
    Column("proposal_id", ForeignKey("proposals.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """A user of the web app, with what the emails need: address, zone, interests and opt-outs."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    naics_codes: Mapped[list[Any]] = mapped_column(default=list)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    set_asides: Mapped[list[Any]] = mapped_column(default=list)
    #: Email kinds the user opted out of: welcome, reminder, proposal, weekly.
    email_opt_outs: Mapped[list[Any]] = mapped_column(default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_reminder_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    saved: Mapped[list[SavedOpportunity]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Opportunity(Base):
    """A SAM.gov notice: normalized columns for queries plus the raw payload, upserted by notice id + hash."""

    __tablename__ = "opportunities"

    notice_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    solicitation_number: Mapped[str | None] = mapped_column(String(128), index=True)
    agency_path: Mapped[str | None] = mapped_column(Text)
    agency_code: Mapped[str | None] = mapped_column(String(128))
    posted_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    notice_type: Mapped[str | None] = mapped_column(String(64))
    base_type: Mapped[str | None] = mapped_column(String(64))
    archive_type: Mapped[str | None] = mapped_column(String(32))
    archive_date: Mapped[dt.date | None] = mapped_column(Date)
    set_aside_code: Mapped[str | None] = mapped_column(String(32), index=True)
    set_aside_description: Mapped[str | None] = mapped_column(String(256))
    response_deadline: Mapped[dt.datetime | None] = mapped_column(index=True)
    naics_code: Mapped[str | None] = mapped_column(String(16), index=True)
    naics_codes: Mapped[list[Any]] = mapped_column(default=list)
    classification_code: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    award_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    awardee_name: Mapped[str | None] = mapped_column(String(256))
    awardee_uei: Mapped[str | None] = mapped_column(String(12))
    place_state: Mapped[str | None] = mapped_column(String(8))
    ui_link: Mapped[str | None] = mapped_column(Text)
    #: The agency path split on its dots, top first; ``department`` is its first element (analytics group by it).
    agency_names: Mapped[list[Any]] = mapped_column(default=list)
    department: Mapped[str | None] = mapped_column(String(256), index=True)
    #: Attachment URLs (``resourceLinks``).
    resource_links: Mapped[list[Any]] = mapped_column(default=list)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SavedOpportunity(Base):
    """A notice a user is tracking."""

    __tablename__ = "saved_opportunities"
    __table_args__ = (UniqueConstraint("user_id", "notice_id", name="uq_saved_opportunities_user_notice"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("opportunities.notice_id", ondelete="CASCADE"))
    saved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="saved")
    opportunity: Mapped[Opportunity] = relationship()


class Proposal(Base):
    """A proposal a user writes for a notice, shared with collaborators."""

    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    notice_id: Mapped[str | None] = mapped_column(ForeignKey("opportunities.notice_id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(32), default="draft")  # draft, in_review, submitted, won, lost
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    collaborators: Mapped[list[User]] = relationship(secondary=proposal_collaborators)
    opportunity: Mapped[Opportunity | None] = relationship()


class Entity(Base):
    """A SAM.gov registered entity, keyed by UEI."""

    __tablename__ = "entities"

    uei: Mapped[str] = mapped_column(String(12), primary_key=True)
    cage_code: Mapped[str | None] = mapped_column(String(8))
    legal_business_name: Mapped[str] = mapped_column(String(300), default="")
    registration_status: Mapped[str | None] = mapped_column(String(32))
    registration_date: Mapped[dt.date | None] = mapped_column(Date)
    expiration_date: Mapped[dt.date | None] = mapped_column(Date)
    primary_naics: Mapped[str | None] = mapped_column(String(16), index=True)
    naics_list: Mapped[list[Any]] = mapped_column(default=list)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: When a sync last wrote the row (an unchanged record costs no write, so it is not touched then).
    synced_at: Mapped[dt.datetime | None]


class TrackedEntity(Base):
    """A UEI a user follows (a competitor, a teaming partner): ``sync_entities`` refreshes these."""

    __tablename__ = "tracked_entities"
    __table_args__ = (UniqueConstraint("user_id", "uei", name="uq_tracked_entities_user_uei"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    uei: Mapped[str] = mapped_column(String(12), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
