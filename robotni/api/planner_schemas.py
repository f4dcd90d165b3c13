"""Request and answer shapes of the planner resources; the plan's own is robotni/planner/schema.py's."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from robotni.api.schedule_schemas import ScheduleSchema
from robotni.planner.execute import CREATED, UNCHANGED, UPDATED, WOULD_CREATE, WOULD_UPDATE
from robotni.schedules.declaration import TIMEZONE
from robotni.submission.check import DEFAULT_PROJECT, NAME

# A prompt is a sentence or a few; a page of text is not a plan.
MAX_PROMPT_CHARS = 2000
ACTIONS = [CREATED, UPDATED, UNCHANGED, WOULD_CREATE, WOULD_UPDATE]


class PlanRequestSchema(Schema):
    prompt = fields.String(
        required=True,
        validate=validate.Length(1, MAX_PROMPT_CHARS),
        metadata={"description": "e.g. 'run fakejob every day at 07:00' or 'jalankan helloworld tiap 30 detik'"},
    )
    timezone = fields.String(
        load_default="UTC", validate=TIMEZONE, metadata={"description": "IANA name; one named in the prompt wins"}
    )
    project = fields.String(load_default=DEFAULT_PROJECT, validate=NAME)


class ExecuteRequestSchema(PlanRequestSchema):
    run_immediately = fields.Boolean(load_default=False, metadata={"description": "also run each schedule once now"})
    dry_run = fields.Boolean(load_default=False, metadata={"description": "say what would be done, change nothing"})


class ExecutedScheduleSchema(Schema):
    action = fields.String(validate=validate.OneOf(ACTIONS))
    schedule = fields.Nested(
        ScheduleSchema, metadata={"description": "as GET /schedules/{id} shows it; on a dry run, as it would be"}
    )
    job_id = fields.String(allow_none=True, metadata={"description": "the job run now (run_immediately)"})


class ExecutedSchema(Schema):
    source = fields.String(metadata={"description": "'rules' or 'model': which made the plan"})
    dry_run = fields.Boolean()
    schedules = fields.List(fields.Nested(ExecutedScheduleSchema))
    unplaced = fields.List(fields.String())
    model_error = fields.String(allow_none=True, metadata={"description": "why the model's plan was not used"})
