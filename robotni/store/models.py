"""The job store's tables (SQLAlchemy models); every time in them is naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from robotni.status import PRIORITY_ORDER, JobStatus, Priority


def utcnow() -> datetime:
    """Naive UTC: what both SQLite and PostgreSQL `timestamp` columns store without surprises."""
    return datetime.now(UTC).replace(tzinfo=None)


class StatusColumn(TypeDecorator[JobStatus]):
    """A JobStatus in Python, its plain value (VARCHAR 16) in the store: no database enum type to migrate."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: JobStatus | str | None, dialect: Dialect) -> str | None:
        return None if value is None else JobStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> JobStatus | None:
        return None if value is None else JobStatus(value)


class PriorityColumn(TypeDecorator[Priority]):
    """A Priority in Python, its rank in the store: ORDER BY priority takes urgent jobs first."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Priority | str | None, dialect: Dialect) -> int | None:
        return None if value is None else Priority(value).rank

    def process_result_value(self, value: int | None, dialect: Dialect) -> Priority | None:
        return None if value is None else PRIORITY_ORDER[value]


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(64))
    params: Mapped[Any] = mapped_column(JSON)
    venv: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[JobStatus] = mapped_column(StatusColumn)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    # Attempts whose worker was lost (killed, host gone): run again without spending the type's retries.
    lost_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When a scheduled job (retry backoff, deferred start) is due.
    run_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Last time its message was sent (null: none is out); a reaper sends another when it waited too long.
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[Priority] = mapped_column(PriorityColumn, default=Priority.NORMAL, server_default="1")
    # Its type's `concurrency` key and limit as they were at submit (robotni/store/claims.py counts by key).
    concurrency_key: Mapped[str | None] = mapped_column(String(255))
    concurrency_limit: Mapped[int | None] = mapped_column(Integer)
    progress: Mapped[float | None] = mapped_column(Float)
    progress_message: Mapped[str | None] = mapped_column(String(500))
    log_bytes: Mapped[int] = mapped_column(Integer, default=0)
    # Told of the job's end by a signed POST, as a webhook subscription is (robotni/webhooks/).
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    # The name of the token whose own callback secret signs it (robotni/tokens.py); null: ROBOTNI_CALLBACK_SECRET.
    callback_token: Mapped[str | None] = mapped_column(String(128))
    # Bumped by every change a client can see: the ETag is derived from it, so polling costs one indexed read.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set only on a job with parents (depends_on): "cancel" or "run" (robotni.status.ParentFailure).
    on_parent_failure: Mapped[str | None] = mapped_column(String(8))
    # Parents not ended yet, while `waiting`: the job is queued in the transaction that brings it to 0.
    parents_left: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Some job waits on this one: only then does its end look for dependents (an indexed read per job otherwise).
    has_dependents: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    workflow_id: Mapped[str | None] = mapped_column(String(36))
    step: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_jobs_created", "created_at", "id"),
        Index("ix_jobs_project_created", "project", "created_at", "id"),
        Index("ix_jobs_status_created", "status", "created_at", "id"),
        Index("ix_jobs_type_created", "type", "created_at", "id"),
        Index("ux_jobs_idempotency", "project", "idempotency_key", unique=True),
        # Two filters at once: SQLite uses one index per query, and a single-column one made a small project's
        # completed jobs a walk through every completed job (bench/api.py: 200-340 ms at a million rows, 4-6 ms
        # with these). Created in this order on purpose: SQLite prefers the newest of equally good indexes.
        Index("ix_jobs_type_status_created", "type", "status", "created_at", "id"),
        Index("ix_jobs_project_type_created", "project", "type", "created_at", "id"),
        Index("ix_jobs_project_status_created", "project", "status", "created_at", "id"),
        # /metrics reads only the jobs that ended since its watermark (robotni/store/tallies.py).
        Index("ix_jobs_finished", "finished_at"),
        # The claim (robotni/store/claims.py): a queue's waiting jobs in priority order, and per project (its
        # projects, each one's first jobs: index seeks, never a sort); running jobs per concurrency key; a
        # rate-limited type's recent starts.
        Index("ix_jobs_queue_status_priority", "queue", "status", "priority", "created_at", "id"),
        Index("ix_jobs_queue_status_project", "queue", "status", "project", "priority", "created_at", "id"),
        Index("ix_jobs_key_status", "concurrency_key", "status"),
        Index("ix_jobs_type_started", "type", "started_at"),
        Index("ix_jobs_workflow", "workflow_id"),
    )


class Dependency(Base):
    """An edge: job_id waits for parent_id to end. Read from the parent's side when it ends, hence the index."""

    __tablename__ = "dependencies"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    parent_id: Mapped[str] = mapped_column(String(36), primary_key=True)

    __table_args__ = (Index("ix_dependencies_parent", "parent_id"),)


class Workflow(Base):
    """Steps (jobs with workflow_id) and their edges, submitted together.

    Its status is read from its steps (robotni/store/workflows.py), never stored: a step's end writes nothing
    here, so the steps of a fan-in ending at once do not queue up on this row.
    """

    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    # Set by a cancel that came while a step had not ended: the workflow then ends `cancelled`.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_workflows_created", "created_at", "id"),
        Index("ix_workflows_project_created", "project", "created_at", "id"),
    )


class Attempt(Base):
    """One row per ended attempt of a job: what a retry or a lost worker left behind stays visible."""

    __tablename__ = "attempts"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime] = mapped_column(DateTime)


class LogChunk(Base):
    """A job's output as its worker shipped it, beat by beat: any API process reads it, whichever host ran the job.

    The chunks of a job follow each other from 0, attempt after attempt; the job's log_bytes is their total.
    """

    __tablename__ = "log_chunks"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    start: Mapped[int] = mapped_column(Integer, primary_key=True)  # its first byte's offset in the log
    data: Mapped[bytes] = mapped_column(LargeBinary)


class WorkerBeat(Base):
    """One row per live worker, renewed by its heartbeat; works on every broker, unlike `celery inspect`."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Schedule(Base):
    """A job (or a workflow) made again and again: by a cron expression in a timezone, or every interval_seconds."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # A job's type and params, or (type null) a workflow's {name, steps}, started at each due time.
    type: Mapped[str | None] = mapped_column(String(64))
    workflow: Mapped[Any | None] = mapped_column(JSON)
    project: Mapped[str] = mapped_column(String(128))
    params: Mapped[Any] = mapped_column(JSON)
    venv: Mapped[str | None] = mapped_column(String(128))
    cron: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # "api", or "file" with source_file: a file's schedules are replaced from it at each beat start.
    source: Mapped[str] = mapped_column(String(16), default="api")
    source_file: Mapped[str | None] = mapped_column(String(1024))
    # Null while disabled; dispatch moves it forward with a compare-and-set, so one due time makes one job.
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_job_id: Mapped[str | None] = mapped_column(String(36))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_schedules_due", "enabled", "next_run_at"),)


class ScheduleRun(Base):
    """The job a schedule made for one due time; the primary key lets a second beat's insert fail, not repeat."""

    __tablename__ = "schedule_runs"

    schedule_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MetricTotal(Base):
    """Running totals of ended jobs for /metrics (robotni/store/tallies.py): (type, status, name) -> value.

    name is `jobs`, `timed`, `seconds` or a duration bucket `le:<seconds>`; the row ("", "", "watermark") holds
    the end time (epoch seconds) below which every ended job is counted here.
    """

    __tablename__ = "metric_totals"

    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class Event(Base):
    """A job's status change, written in the transaction that made it: the outbox of webhooks and live streams.

    Its id orders events (an SSE cursor); payload is the webhook body, kept only when a delivery was made for it.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36))
    project: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    payload: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_events_job", "job_id", "id"), Index("ix_events_project", "project", "id"))


class WebhookSubscription(Base):
    """Where to POST which events of which projects; the secret signs them (Standard Webhooks)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    # Empty: every project (only a token for all projects may make one).
    projects: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to one subscription (or to the job's callback_url when subscription_id is null), until it is
    delivered or has failed for good. Claimed by update with a lease, as jobs are."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(36))
    subscription_id: Mapped[str | None] = mapped_column(String(36))
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Last time its message was sent (null: none is out); the sweeper sends another when it waited too long.
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_body: Mapped[str | None] = mapped_column(Text)  # the first KiB of the last answer
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_try_at"),
        Index("ix_deliveries_subscription", "subscription_id", "id"),
        Index("ix_deliveries_job", "job_id", "subscription_id", "id"),
    )
