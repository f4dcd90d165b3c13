"""The API's request and response shapes (marshmallow), which also make its OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from robotni.status import JobStatus, ParentFailure, Priority
from robotni.store.models import utcnow
from robotni.submission.check import DEFAULT_PROJECT, MAX_PARENTS, MAX_WAIT_SECONDS, NAME

# Names matched against the store: PostgreSQL's text cannot hold a NUL, so one would be a 500 there.
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="contains a NUL character")
# The largest id or offset the store can hold or even compare (a 64-bit integer): a larger one is no id, not a 500.
MAX_ID = 2**63 - 1


class UTCDateTime(fields.DateTime):
    """The store keeps naive UTC; the API always says so (ISO 8601 with +00:00)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


PRIORITIES = [p.value for p in Priority]


class JobCreateSchema(Schema):
    type = fields.String(required=True, metadata={"description": "A worker type from GET /types", "example": "fakejob"})
    priority = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(PRIORITIES),
        metadata={"description": "urgent, normal or batch; default: the type's `priority`, else normal"},
    )
    params = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata={"description": "Checked against the type's schema", "example": {"delay_seconds": 2}},
    )
    project = fields.String(load_default=DEFAULT_PROJECT, validate=NAME)
    venv = fields.String(
        load_default=None, allow_none=True, metadata={"description": "name of a virtualenv in ROBOTNI_VENVS_DIR"}
    )
    run_at = fields.AwareDateTime(
        default_timezone=UTC,
        load_default=None,
        allow_none=True,
        metadata={"description": "ISO 8601 (UTC without an offset): the job is `scheduled` until then; past: now"},
    )
    callback_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(1, 2048),
        metadata={"description": "POSTed the job's end, signed with ROBOTNI_CALLBACK_SECRET (Standard Webhooks)"},
    )
    countdown = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(max=MAX_WAIT_SECONDS),
        metadata={"description": "seconds from now, as in Celery (instead of run_at); 0 or less: now"},
    )

    depends_on = fields.List(
        fields.String(validate=NO_NUL),
        load_default=list,
        validate=validate.Length(max=MAX_PARENTS),
        metadata={"description": f"ids of jobs of the same project (at most {MAX_PARENTS}): it waits until they ended"},
    )
    on_parent_failure = fields.String(
        load_default=ParentFailure.CANCEL.value,
        validate=validate.OneOf([rule.value for rule in ParentFailure]),
        metadata={"description": "a parent did not complete: `cancel` this job (and its dependents) or `run` it"},
    )

    @validates_schema
    def _one_start_time(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("run_at") is not None and data.get("countdown") is not None:
            raise ValidationError("give run_at or countdown, not both", "run_at")
        if data.get("depends_on") and (data.get("run_at") is not None or data.get("countdown") is not None):
            raise ValidationError("it starts when its parents end: no run_at or countdown with it", "depends_on")

    @post_load
    def _deferred_until(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Both become `run_at`, naive UTC like the store, or None for a job that starts now."""
        now, countdown = utcnow(), data.pop("countdown", None)
        try:
            start = data["run_at"] and data["run_at"].astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 or 9999 with an offset
            raise ValidationError("out of range", "run_at") from None
        if countdown is not None:
            start = now + timedelta(seconds=countdown) if countdown > 0 else None
        data["run_at"] = start if start and start > now else None
        data["depends_on"] = list(dict.fromkeys(data["depends_on"]))  # a parent named twice is one parent
        data["on_parent_failure"] = ParentFailure(data["on_parent_failure"])
        return data


class JobSchema(Schema):
    id = fields.String(metadata={"example": "6f0c2a9e-1b7d-4c55-9a3e-2f1d8e4b7c10"})
    job_id = fields.Function(
        lambda job: job.id, dump_only=True, metadata={"type": "string", "description": "id again, for older clients"}
    )
    type = fields.String(metadata={"example": "fakejob"})
    project = fields.String(metadata={"example": "default"})
    queue = fields.String()
    params = fields.Dict()
    venv = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf([s.value for s in JobStatus]), metadata={"example": "completed"})
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    concurrency_key = fields.String(
        allow_none=True, metadata={"description": "the key its type's `concurrency` limit counts it under"}
    )
    waiting_for = fields.Function(
        lambda job: getattr(job, "waiting_for", None),
        allow_none=True,
        metadata={"description": "a queued job: what it waits for (a worker of its queue, a limit, its turn)"},
    )
    result = fields.Raw(
        allow_none=True,
        metadata={"description": "JSON the script wrote to $ROBOTNI_RESULT", "example": {"waited": 2.4}},
    )
    error = fields.String(allow_none=True)
    exit_code = fields.Integer(allow_none=True)
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    run_at = UTCDateTime(
        allow_none=True, metadata={"description": "when a scheduled job (a retry, a deferred start) is due"}
    )
    worker = fields.String(allow_none=True)
    cancel_requested = fields.Boolean()
    progress = fields.Float(allow_none=True, metadata={"description": "0 to 1, as the script last reported"})
    progress_message = fields.String(allow_none=True)
    log_bytes = fields.Integer(metadata={"description": "Size of the output log so far"})
    callback_url = fields.String(allow_none=True)
    created_at = UTCDateTime()
    started_at = UTCDateTime(allow_none=True)
    finished_at = UTCDateTime(allow_none=True)
    updated_at = UTCDateTime()
    on_parent_failure = fields.String(allow_none=True, metadata={"description": "set on a job with depends_on"})
    parents_left = fields.Integer(metadata={"description": "parents not ended yet, while `waiting`"})
    workflow_id = fields.String(allow_none=True)
    step = fields.String(allow_none=True, metadata={"description": "its step's name in its workflow"})


def in_utc_range(moment: datetime) -> None:
    """Year 1 at +01:00 or year 9999 at -01:00 has no UTC time (OverflowError): out of range, not a 500."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError("out of range") from None


class JobQuerySchema(Schema):
    type = fields.List(fields.String(), metadata={"description": "one or more types (repeat the parameter)"})
    status = fields.List(fields.String(validate=validate.OneOf([s.value for s in JobStatus])))
    priority = fields.List(fields.String(validate=validate.OneOf(PRIORITIES)))
    project = fields.List(fields.String())
    created_after = fields.AwareDateTime(
        default_timezone=UTC, validate=in_utc_range, metadata={"description": "ISO 8601, inclusive"}
    )
    created_before = fields.AwareDateTime(
        default_timezone=UTC, validate=in_utc_range, metadata={"description": "ISO 8601, exclusive"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(metadata={"description": "`next_cursor` of the previous page"})


class JobPageSchema(Schema):
    jobs = fields.List(fields.Nested(JobSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


class LogQuerySchema(Schema):
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=65536, validate=validate.Range(1, 1024 * 1024))


class LogChunkSchema(Schema):
    offset = fields.Integer()
    next_offset = fields.Integer(metadata={"description": "ask from here next time"})
    size = fields.Integer(metadata={"description": "bytes in the log so far"})
    data = fields.String(metadata={"description": "the bytes from offset, decoded as UTF-8"})
    complete = fields.Boolean(metadata={"description": "the job has ended and nothing more will come"})


class FlushSchema(Schema):
    type = fields.List(fields.String(validate=NO_NUL))
    project = fields.List(fields.String(validate=NO_NUL))


class FlushResultSchema(Schema):
    cancelled = fields.Integer()


class QueueSchema(Schema):
    pending = fields.List(fields.Nested(JobSchema))
    scheduled = fields.List(fields.Nested(JobSchema))
    cancelled = fields.List(fields.Nested(JobSchema))


class WorkerSchema(Schema):
    name = fields.String()
    hostname = fields.String()
    pid = fields.Integer()
    queues = fields.List(fields.String())
    concurrency = fields.Integer()
    started_at = UTCDateTime()
    last_seen = UTCDateTime()
    running = fields.List(fields.String(), metadata={"description": "ids of the jobs it runs now"})


class StatusSchema(Schema):
    version = fields.String()
    queues = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "jobs waiting"})
    queues_without_worker = fields.List(
        fields.String(), metadata={"description": "queues no live worker consumes: their jobs wait until one starts"}
    )
    waiting_by_priority = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "queued jobs per priority"}
    )
    waiting_by_queue = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        metadata={"description": "queued jobs per queue and priority"},
    )
    held = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        metadata={
            "description": "queued jobs a limit holds back now, per reason (worker: a queue no live worker consumes; "
            "concurrency_key, project_max_running, rate) and per queue, key, project or type; a job held twice "
            "counts under both; 20 names per reason at most, the rest added up under '(others)'"
        },
    )
    concurrency_keys = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        metadata={"description": "the 20 concurrency keys with the most jobs running: running, limit, waiting"},
    )
    jobs = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "per status"})
    workers = fields.List(fields.Nested(WorkerSchema))


class CallerSchema(Schema):
    token_required = fields.Boolean(metadata={"description": "false: no tokens are configured (loopback only)"})
    projects = fields.List(
        fields.String(), allow_none=True, metadata={"description": "the token's projects; null: every project"}
    )


class RetrySchema(Schema):
    max_retries = fields.Integer()
    backoff = fields.Float()
    backoff_max = fields.Float()
    on_timeout = fields.Boolean()


class EnvironmentSchema(Schema):
    kind = fields.String(metadata={"description": "robotni (Robotni's interpreter), dependencies (built) or venv"})
    dependencies = fields.List(fields.String(), metadata={"description": "PEP 723 dependencies, normalized"})
    requires_python = fields.String(allow_none=True)
    key = fields.String(metadata={"description": "the built environment's folder under $DATA_DIR/envs"})
    venv = fields.String(metadata={"description": "name of the venv in ROBOTNI_VENVS_DIR"})


class LimitsSchema(Schema):
    memory_mb = fields.Integer(metadata={"description": "address space of each process (RLIMIT_AS)"})
    cpu_seconds = fields.Integer(metadata={"description": "CPU time of each process (RLIMIT_CPU)"})
    file_size_mb = fields.Integer(metadata={"description": "largest file it may write (RLIMIT_FSIZE)"})
    open_files = fields.Integer(metadata={"description": "open file descriptors (RLIMIT_NOFILE)"})
    processes = fields.Integer(metadata={"description": "processes and threads of the job user (RLIMIT_NPROC)"})


class ConcurrencySchema(Schema):
    limit = fields.Integer()
    key = fields.String(metadata={"description": "project, params.<field>, or a constant shared across types"})


class TypeSchema(Schema):
    name = fields.String()
    description = fields.String()
    queue = fields.String()
    soft_time_limit = fields.Float()
    hard_time_limit = fields.Float()
    params_schema = fields.Dict()
    retry = fields.Nested(RetrySchema)
    limits = fields.Nested(LimitsSchema)
    environment = fields.Nested(EnvironmentSchema)
    isolation = fields.String(metadata={"description": "process (a new interpreter per job) or fork (see README)"})
    preload = fields.List(fields.String(), metadata={"description": "modules its fork server imports before any job"})
    ready = fields.Boolean(metadata={"description": "its environment is there; jobs fail at once with `error` if not"})
    error = fields.String(allow_none=True, metadata={"description": "why the environment is not ready"})
    queue_has_worker = fields.Boolean(metadata={"description": "a live worker consumes its queue"})
    priority = fields.String(metadata={"description": "its jobs' priority unless a submit names one"})
    concurrency = fields.Nested(
        ConcurrencySchema, allow_none=True, metadata={"description": "at most `limit` of one key run at once"}
    )
    rate = fields.String(allow_none=True, metadata={"description": "at most this many starts, as '30/m'"})


class AttemptSchema(Schema):
    number = fields.Integer()
    worker = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "what the job became when this attempt ended"})
    exit_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    started_at = UTCDateTime(allow_none=True)
    finished_at = UTCDateTime()


class IdempotencyHeaderSchema(Schema):
    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(1, 255),
        metadata={"description": "repeat a submit safely: the same key in the same project returns the first job"},
    )
