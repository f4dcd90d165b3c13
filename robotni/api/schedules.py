"""The schedule resources under /api/worker/schedules: flask-smorest views, errors only through `abort`.

Changes land in the store; the next dispatch tick (about a second later) reads them, so nothing restarts.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import url_for
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from robotni.api import auth
from robotni.api.blueprint import Blueprint, abort
from robotni.api.jobs import checked_request
from robotni.api.schedule_schemas import (
    RunQuerySchema,
    ScheduleQuerySchema,
    ScheduleRunSchema,
    ScheduleSchema,
    ScheduleUpdateSchema,
)
from robotni.config import settings
from robotni.schedules import dispatch
from robotni.schedules.declaration import ScheduleCreateSchema
from robotni.schedules.dispatch import InvalidSchedule, Timing
from robotni.store.models import Schedule, utcnow
from robotni.submission import workflow
from robotni.submission.check import RefusedRequest
from robotni.worktypes.registry import registry

blp = Blueprint("schedules", __name__, url_prefix="/api/worker", description="Jobs made on a cron or interval")


def schedule_or_404(schedule_id: str) -> Schedule:
    schedule = dispatch.get(schedule_id)
    if schedule is None or not auth.visible(schedule.project):  # another project's: not found, as for jobs
        abort(404, message=f"no schedule with id {schedule_id}")
    return schedule


def _checked(values: dict[str, Any]) -> None:
    """422 naming the field unless the type, params, venv (or the workflow) and timing hold, exactly as for a job."""
    if values.get("workflow") is not None:
        try:
            workflow.checked(registry(), values["project"], values["workflow"]["steps"], settings())
        except RefusedRequest as exc:
            abort(422, errors={"json": {"workflow": exc.errors}}, message=f"workflow: {exc}")
    else:
        checked_request(values)
    try:
        Timing(values["cron"], values["timezone"], values["interval_seconds"]).check(utcnow())
    except InvalidSchedule as exc:
        abort(422, errors={"json": {exc.field: [exc.message]}}, message=str(exc))


def _name_taken(name: str) -> NoReturn:
    abort(409, message=f"a schedule named {name!r} exists already")


def _location(schedule: Schedule) -> dict[str, str]:
    return {"Location": url_for("schedules.ScheduleById", schedule_id=schedule.id)}


@blp.route("/schedules", operations={"get": "listSchedules", "post": "createSchedule"})
class Schedules(MethodView):
    @blp.arguments(ScheduleQuerySchema, location="query")
    @blp.response(200, ScheduleSchema(many=True))
    def get(self, query: dict[str, Any]) -> list[Schedule]:
        """List schedules by name, optionally of some projects"""
        projects = auth.project_filter(query.get("project"))
        return [] if projects == [] else dispatch.listing(projects)

    @blp.arguments(ScheduleCreateSchema)
    @blp.response(201, ScheduleSchema)
    @blp.alt_response(403, description="The token does not cover this project")
    @blp.alt_response(409, description="The name is taken")
    @blp.alt_response(422, description="Unknown type, bad params or workflow, bad cron, timezone or interval")
    def post(self, body: dict[str, Any]) -> tuple[Schedule, int, dict[str, str]]:
        """Create a schedule: a cron expression in a timezone, or an interval in seconds"""
        auth.require(body["project"])
        _checked(body)
        try:
            schedule = dispatch.create(body, utcnow())
        except IntegrityError:
            _name_taken(body["name"])
        return schedule, 201, _location(schedule)


@blp.route(
    "/schedules/<string:schedule_id>",
    operations={"get": "getSchedule", "patch": "updateSchedule", "delete": "deleteSchedule"},
)
class ScheduleById(MethodView):
    @blp.response(200, ScheduleSchema)
    @blp.alt_response(404, description="No such schedule")
    def get(self, schedule_id: str) -> Schedule:
        """Get a schedule with its next and last run"""
        return schedule_or_404(schedule_id)

    @blp.arguments(ScheduleUpdateSchema)
    @blp.response(200, ScheduleSchema)
    @blp.alt_response(403, description="The token does not cover the new project")
    @blp.alt_response(404, description="No such schedule")
    @blp.alt_response(409, description="The name is taken, or the schedule is declared in the schedules file")
    @blp.alt_response(422, description="The schedule as changed would not be valid")
    def patch(self, body: dict[str, Any], schedule_id: str) -> Schedule:
        """Change a schedule; a new timing counts from now, and the next tick uses it"""
        schedule = _editable(schedule_or_404(schedule_id))
        if "project" in body:
            auth.require(body["project"])
        # Switching between cron and interval, or between a type and a workflow, needs only the new one.
        if body.get("type") is not None and "workflow" not in body:
            body["workflow"] = None
        if body.get("workflow") is not None and "type" not in body:
            body["type"] = None
        if body.get("cron") is not None and "interval_seconds" not in body:
            body["interval_seconds"] = None
        if body.get("interval_seconds") is not None and "cron" not in body:
            body["cron"] = None
        _checked({**dispatch.values_of(schedule), **body})
        try:
            changed = dispatch.change(schedule, body, utcnow())
        except IntegrityError:
            _name_taken(body["name"])
        return changed or schedule_or_404(schedule_id)

    @blp.response(204)
    @blp.alt_response(404, description="No such schedule")
    @blp.alt_response(409, description="The schedule is declared in the schedules file")
    def delete(self, schedule_id: str) -> None:
        """Delete a schedule; the jobs it made stay"""
        dispatch.remove(_editable(schedule_or_404(schedule_id)).id)


def _editable(schedule: Schedule) -> Schedule:
    """The file is a file schedule's definition: the API may enable and disable it, not rewrite it."""
    if schedule.source == dispatch.FILE_SOURCE:
        abort(409, message=f"schedule {schedule.name!r} is declared in {schedule.source_file}; change it there")
    return schedule


def _switch(schedule_id: str, enabled: bool) -> Schedule:
    try:
        changed = dispatch.change(schedule_or_404(schedule_id), {"enabled": enabled}, utcnow())
    except InvalidSchedule as exc:  # stored before its timezone left tzdata: fix the timing with PATCH
        abort(422, errors={"json": {exc.field: [exc.message]}}, message=str(exc))
    return changed or schedule_or_404(schedule_id)


@blp.route("/schedules/<string:schedule_id>/enable", operations={"post": "enableSchedule"})
class ScheduleEnable(MethodView):
    @blp.response(200, ScheduleSchema)
    @blp.alt_response(404, description="No such schedule")
    @blp.alt_response(422, description="Its stored timing no longer holds (a timezone gone from tzdata)")
    def post(self, schedule_id: str) -> Schedule:
        """Enable a schedule: its next run counts from now (missed runs are not made up)"""
        return _switch(schedule_id, True)


@blp.route("/schedules/<string:schedule_id>/disable", operations={"post": "disableSchedule"})
class ScheduleDisable(MethodView):
    @blp.response(200, ScheduleSchema)
    @blp.alt_response(404, description="No such schedule")
    def post(self, schedule_id: str) -> Schedule:
        """Disable a schedule: it makes no job until enabled again"""
        return _switch(schedule_id, False)


@blp.route("/schedules/<string:schedule_id>/runs", operations={"get": "listScheduleRuns"})
class ScheduleRuns(MethodView):
    @blp.arguments(RunQuerySchema, location="query")
    @blp.response(200, ScheduleRunSchema(many=True))
    @blp.alt_response(404, description="No such schedule")
    def get(self, query: dict[str, Any], schedule_id: str) -> list[dict[str, Any]]:
        """The jobs a schedule made, newest due time first, each with its due time"""
        schedule_or_404(schedule_id)
        return [
            {"due_at": run.due_at, "job_id": run.job_id, "created_at": run.created_at, "job": job}
            for run, job in dispatch.runs(schedule_id, query["limit"])
        ]
