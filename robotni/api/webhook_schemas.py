"""Request and response shapes of webhook subscriptions and their delivery log (marshmallow, OpenAPI)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from robotni.api.schemas import UTCDateTime
from robotni.store.events import WEBHOOK_EVENTS
from robotni.submission.check import NAME


def _url(required: bool) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Length(1, 2048),
        metadata={"description": "http(s) URL of a public address", "example": "https://app.example.com/hooks"},
    )


def _events(required: bool) -> fields.List[str]:
    return fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)),
        required=required,
        validate=validate.Length(min=1),
        metadata={"example": ["job.completed", "job.failed"]},
    )


class WebhookCreateSchema(Schema):
    url = _url(required=True)
    events = _events(required=True)
    projects = fields.List(
        fields.String(validate=NAME),
        load_default=list,
        metadata={"description": "empty: every project the token covers", "example": ["default"]},
    )


class WebhookUpdateSchema(Schema):
    url = _url(required=False)
    events = _events(required=False)
    enabled = fields.Boolean(metadata={"description": "true re-enables one that a 410 Gone disabled"})


class WebhookSchema(Schema):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    projects = fields.List(fields.String(), metadata={"description": "empty: every project"})
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class WebhookSecretSchema(WebhookSchema):
    secret = fields.String(
        metadata={
            "description": "Standard Webhooks secret; shown only here",
            "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }
    )


class DeliveryQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class DeliverySchema(Schema):
    id = fields.Integer()
    event_id = fields.Integer(metadata={"description": "also the webhook-id header, as evt_<event_id>"})
    event = fields.String(metadata={"example": "job.completed"})
    job_id = fields.String(allow_none=True, metadata={"description": "the job of a job.* event"})
    schedule_id = fields.String(allow_none=True, metadata={"description": "the schedule of a schedule.failed event"})
    status = fields.String(validate=validate.OneOf(["pending", "delivered", "failed"]))
    attempts = fields.Integer()
    next_try_at = UTCDateTime(allow_none=True, metadata={"description": "when a pending delivery is tried next"})
    last_code = fields.Integer(allow_none=True, metadata={"description": "the receiver's last status code"})
    last_body = fields.String(allow_none=True, metadata={"description": "the first KiB of its last answer"})
    last_error = fields.String(allow_none=True, metadata={"description": "why the last try got no answer"})
    created_at = UTCDateTime()
    delivered_at = UTCDateTime(allow_none=True)
