"""What a schedule declaration looks like: the body of POST /schedules and each entry of a schedules file."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from robotni.status import ParentFailure
from robotni.submission.check import DEFAULT_PROJECT, MAX_WAIT_SECONDS, NAME

CRON = validate.Length(1, 255)
TIMEZONE = validate.Length(1, 64)
INTERVAL = validate.Range(1, MAX_WAIT_SECONDS)


class StepCreateSchema(Schema):
    """A workflow's step, as POST /workflows and a schedule's `workflow` declare it."""

    name = fields.String(required=True, validate=NAME, metadata={"description": "unique in the workflow"})
    type = fields.String(required=True, metadata={"description": "A worker type from GET /types"})
    params = fields.Dict(keys=fields.String(), load_default=dict)
    venv = fields.String(load_default=None, allow_none=True)
    depends_on = fields.List(
        fields.String(), load_default=list, metadata={"description": "names of steps that must end before this one"}
    )
    on_parent_failure = fields.String(
        load_default=ParentFailure.CANCEL.value,
        validate=validate.OneOf([rule.value for rule in ParentFailure]),
        metadata={"description": "a parent did not complete: `cancel` this step (and those under it) or `run` it"},
    )


class WorkflowDeclarationSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    steps = fields.List(fields.Nested(StepCreateSchema), required=True, validate=validate.Length(min=1))


class ScheduleCreateSchema(Schema):
    name = fields.String(required=True, validate=NAME, metadata={"description": "unique among schedules"})
    type = fields.String(load_default=None, metadata={"description": "A worker type from GET /types"})
    workflow = fields.Nested(
        WorkflowDeclarationSchema,
        load_default=None,
        metadata={"description": "instead of type and params: a workflow (name, steps) started at each due time"},
    )
    params = fields.Dict(keys=fields.String(), load_default=dict, metadata={"description": "as for a job"})
    project = fields.String(load_default=DEFAULT_PROJECT, validate=NAME)
    venv = fields.String(load_default=None, allow_none=True)
    cron = fields.String(
        load_default=None, allow_none=True, validate=CRON, metadata={"description": "5 fields, e.g. '0 7 * * *'"}
    )
    timezone = fields.String(
        load_default="UTC", validate=TIMEZONE, metadata={"description": "IANA name the cron is read in"}
    )
    interval_seconds = fields.Integer(
        load_default=None, allow_none=True, validate=INTERVAL, metadata={"description": "instead of cron"}
    )
    enabled = fields.Boolean(load_default=True)

    @validates_schema
    def _type_or_workflow(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("type") is None) == (data.get("workflow") is None):
            raise ValidationError("give a type (with params) or a workflow, one of them", "type")
