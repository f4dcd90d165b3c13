"""The plan's shape: what POST /planner/plan answers, and what a model's answer must fit before it is checked."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from robotni.schedules.declaration import CRON, INTERVAL, TIMEZONE
from robotni.submission.check import NAME


class PlannedScheduleSchema(Schema):
    """A planned schedule; a model's `name` and `project` are not used (the name comes from type and timing)."""

    name = fields.String(validate=NAME, metadata={"description": "from type and timing, e.g. fakejob-daily-0700"})
    type = fields.String(required=True, metadata={"description": "A worker type from GET /types"})
    params = fields.Dict(keys=fields.String(), load_default=dict)
    project = fields.String(validate=NAME)
    cron = fields.String(load_default=None, allow_none=True, validate=CRON)
    interval_seconds = fields.Integer(load_default=None, allow_none=True, strict=True, validate=INTERVAL)
    timezone = fields.String(load_default=None, allow_none=True, validate=TIMEZONE)
    said = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        data_key="from",
        load_default=dict,
        metadata={"description": "each field and the words of the prompt it came from"},
    )


class PlanSchema(Schema):
    source = fields.String(
        dump_only=True, metadata={"description": "'rules', or 'model' when the model's plan passed the checks"}
    )
    schedules = fields.List(fields.Nested(PlannedScheduleSchema), required=True, validate=validate.Length(min=1))
    unplaced = fields.List(
        fields.String(), load_default=list, metadata={"description": "words of the prompt that went to no field"}
    )
    model_error = fields.String(
        dump_only=True, allow_none=True, metadata={"description": "why the model's plan was not used, if one was asked"}
    )
