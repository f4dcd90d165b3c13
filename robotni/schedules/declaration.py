"""What a schedule declaration looks like: the body of POST /schedules and each entry of a schedules file."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from robotni.submission.check import DEFAULT_PROJECT, MAX_WAIT_SECONDS, NAME

CRON = validate.Length(1, 255)
TIMEZONE = validate.Length(1, 64)
INTERVAL = validate.Range(1, MAX_WAIT_SECONDS)


class ScheduleCreateSchema(Schema):
    name = fields.String(required=True, validate=NAME, metadata={"description": "unique among schedules"})
    type = fields.String(required=True, metadata={"description": "A worker type from GET /types"})
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
