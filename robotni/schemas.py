"""The API's request and response shapes (marshmallow), which also make its OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import Schema, fields, validate

from robotni.status import JobStatus

NAME = validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", error="use letters, digits, '_', '.', '-' (at most 128)"
)
DEFAULT_PROJECT = "default"


class UTCDateTime(fields.DateTime):
    """The store keeps naive UTC; the API always says so (ISO 8601 with +00:00)."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class JobCreateSchema(Schema):
    type = fields.String(required=True, metadata={"description": "A worker type from GET /types"})
    params = fields.Dict(
        keys=fields.String(), load_default=dict, metadata={"description": "Checked against the type's schema"}
    )
    project = fields.String(load_default=DEFAULT_PROJECT, validate=NAME)


class JobSchema(Schema):
    id = fields.String()
    type = fields.String()
    project = fields.String()
    queue = fields.String()
    params = fields.Dict()
    venv = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf([s.value for s in JobStatus]))
    result = fields.Raw(allow_none=True, metadata={"description": "JSON the script wrote to $ROBOTNI_RESULT"})
    error = fields.String(allow_none=True)
    exit_code = fields.Integer(allow_none=True)
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    worker = fields.String(allow_none=True)
    cancel_requested = fields.Boolean()
    progress = fields.Float(allow_none=True, metadata={"description": "0 to 1, as the script last reported"})
    progress_message = fields.String(allow_none=True)
    log_bytes = fields.Integer(metadata={"description": "Size of the output log so far"})
    created_at = UTCDateTime()
    started_at = UTCDateTime(allow_none=True)
    finished_at = UTCDateTime(allow_none=True)
    updated_at = UTCDateTime()
