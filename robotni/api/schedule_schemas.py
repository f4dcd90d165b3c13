"""Request and response shapes of the schedule resources; a new schedule's is robotni/schedules/declaration.py's."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from robotni.api.schemas import JobSchema, UTCDateTime
from robotni.schedules.declaration import CRON, INTERVAL, TIMEZONE, WorkflowDeclarationSchema
from robotni.submission.check import NAME


class ScheduleUpdateSchema(Schema):
    """Only what is given changes; giving cron clears interval_seconds and the other way round."""

    name = fields.String(validate=NAME)
    type = fields.String()
    params = fields.Dict(keys=fields.String())
    workflow = fields.Nested(WorkflowDeclarationSchema, allow_none=True)
    project = fields.String(validate=NAME)
    venv = fields.String(allow_none=True)
    cron = fields.String(allow_none=True, validate=CRON)
    timezone = fields.String(validate=TIMEZONE)
    interval_seconds = fields.Integer(allow_none=True, validate=INTERVAL)
    enabled = fields.Boolean()


class ScheduleSchema(Schema):
    id = fields.String()
    name = fields.String()
    type = fields.String(allow_none=True)
    project = fields.String()
    params = fields.Dict()
    workflow = fields.Dict(allow_none=True, metadata={"description": "the workflow it starts, instead of a type"})
    venv = fields.String(allow_none=True)
    cron = fields.String(allow_none=True)
    timezone = fields.String()
    interval_seconds = fields.Integer(allow_none=True)
    enabled = fields.Boolean()
    source = fields.String(metadata={"description": "'api', or 'file' when declared in ROBOTNI_SCHEDULES_FILE"})
    source_file = fields.String(allow_none=True, metadata={"description": "the file it was declared in"})
    next_run_at = UTCDateTime(allow_none=True, metadata={"description": "null while disabled"})
    last_run_at = UTCDateTime(allow_none=True, metadata={"description": "when it last made (or tried) a job"})
    last_job_id = fields.String(allow_none=True, metadata={"description": "its last job, or workflow's first step"})
    last_error = fields.String(allow_none=True, metadata={"description": "why its last due time made no job"})
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class ScheduleQuerySchema(Schema):
    project = fields.List(fields.String())


class ScheduleRunSchema(Schema):
    due_at = UTCDateTime(metadata={"description": "the due time this job was made for"})
    job_id = fields.String()
    created_at = UTCDateTime()
    job = fields.Nested(JobSchema, allow_none=True)


class RunQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
