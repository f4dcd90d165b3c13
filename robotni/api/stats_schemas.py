"""Shapes of the figures endpoints (GET /stats for the dashboard, GET /report) and of the export's query."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, fields, validate

from robotni.api.schemas import NO_NUL, UTCDateTime, in_utc_range
from robotni.submission.check import NAME

# A minute to a day: the dashboard's charts, in buckets of a round number of seconds (robotni/store/stats.py).
WINDOW = validate.Range(60, 86400)
# The report's window: an hour to a week.
HOURS = validate.Range(1, 168)


class StatsQuerySchema(Schema):
    window = fields.Integer(load_default=3600, validate=WINDOW, metadata={"description": "seconds before now"})
    project = fields.List(
        fields.String(validate=NO_NUL), metadata={"description": "only these projects (within the token's)"}
    )


class FinishedBucketSchema(Schema):
    t = UTCDateTime(metadata={"description": "the bucket's start"})
    completed = fields.Integer()
    failed = fields.Integer()
    cancelled = fields.Integer()
    timed_out = fields.Integer()


class DepthSchema(Schema):
    t = UTCDateTime(metadata={"description": "the bucket's end (now, for the last one)"})
    waiting = fields.Integer(metadata={"description": "jobs created and not yet started or ended then"})


class DurationSchema(Schema):
    type = fields.String()
    count = fields.Integer(metadata={"description": "jobs that ended in the window after running"})
    p50_seconds = fields.Float()
    p95_seconds = fields.Float()


class QueueNowSchema(Schema):
    queue = fields.String()
    queued = fields.Integer()
    running = fields.Integer()


class StatsSchema(Schema):
    window = fields.Integer(metadata={"description": "seconds, as asked"})
    bucket_seconds = fields.Integer()
    now = UTCDateTime()
    finished = fields.List(fields.Nested(FinishedBucketSchema), metadata={"description": "jobs ended per bucket"})
    queue_depth = fields.List(fields.Nested(DepthSchema))
    durations = fields.List(fields.Nested(DurationSchema), metadata={"description": "run time per type"})
    queues = fields.List(fields.Nested(QueueNowSchema), metadata={"description": "now, per queue"})


class ReportQuerySchema(Schema):
    hours = fields.Integer(load_default=24, validate=HOURS, metadata={"description": "hours before now"})
    project = fields.List(fields.String(validate=NO_NUL))


class FailureSchema(Schema):
    error = fields.String(metadata={"description": "the error's last line, ids and numbers replaced"})
    count = fields.Integer()
    types = fields.List(fields.String())
    last_job_id = fields.String()
    last_at = UTCDateTime()


class WaitSchema(DurationSchema):
    queue = fields.String()


class ReportSchema(Schema):
    window_hours = fields.Integer()
    since = UTCDateTime()
    until = UTCDateTime()
    by_type_status = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        metadata={"description": "jobs created in the window: type -> status -> count"},
    )
    durations = fields.List(fields.Nested(DurationSchema))
    top_failures = fields.List(fields.Nested(FailureSchema), metadata={"description": "most frequent first"})
    queue_waits = fields.List(
        fields.Nested(WaitSchema), metadata={"description": "creation to start, jobs without parents, first attempt"}
    )


class ExportQuerySchema(Schema):
    project = fields.String(validate=NAME, metadata={"description": "only this project's rows"})
    since = fields.AwareDateTime(
        default_timezone=UTC, validate=in_utc_range, metadata={"description": "jobs created at or after (ISO 8601)"}
    )
    jobs = fields.Boolean(load_default=True, metadata={"description": "false: schedules and webhooks only"})
    logs = fields.Boolean(load_default=False, metadata={"description": "with each job's stored output"})
