"""The workflow resources' request and response shapes (marshmallow), which also make their OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from robotni.api.schemas import JobSchema, UTCDateTime
from robotni.schedules.declaration import WorkflowDeclarationSchema
from robotni.status import WorkflowStatus
from robotni.submission.check import DEFAULT_PROJECT, NAME


class WorkflowCreateSchema(WorkflowDeclarationSchema):
    project = fields.String(load_default=DEFAULT_PROJECT, validate=NAME)


class StepSchema(Schema):
    name = fields.String()
    depends_on = fields.List(fields.String(), metadata={"description": "names of its parent steps"})
    job_id = fields.String()
    job = fields.Nested(JobSchema)


class WorkflowSummarySchema(Schema):
    id = fields.String()
    project = fields.String()
    name = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in WorkflowStatus]))
    cancel_requested = fields.Boolean()
    created_at = UTCDateTime()
    finished_at = UTCDateTime(allow_none=True, metadata={"description": "when its last step ended"})


class WorkflowSchema(WorkflowSummarySchema):
    steps = fields.List(fields.Nested(StepSchema), metadata={"description": "parents before their dependents"})


class WorkflowQuerySchema(Schema):
    project = fields.List(fields.String())
    status = fields.List(fields.String(validate=validate.OneOf([s.value for s in WorkflowStatus])))
    name = fields.List(fields.String())
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(metadata={"description": "`next_cursor` of the previous page"})


class WorkflowPageSchema(Schema):
    workflows = fields.List(fields.Nested(WorkflowSummarySchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})
