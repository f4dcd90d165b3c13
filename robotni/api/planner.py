"""The planner resources under /api/worker/planner: a prompt read into schedules (robotni/planner/), then made.

A planned schedule is checked as POST /schedules checks one, so what the planner makes the schedule API would too.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from robotni.api import auth
from robotni.api.blueprint import Blueprint, abort
from robotni.api.jobs import check_waiting
from robotni.api.planner_schemas import ExecutedSchema, ExecuteRequestSchema, PlanRequestSchema
from robotni.broker.publish import enqueue
from robotni.config import settings
from robotni.planner import execute, plan
from robotni.planner.reading import PlanRefused
from robotni.planner.schema import PlanSchema
from robotni.store.models import utcnow
from robotni.worktypes.registry import registry

blp = Blueprint(
    "planner", __name__, url_prefix="/api/worker", description="Schedules from a sentence, in English or Indonesian"
)


def _plan(body: dict[str, Any]) -> plan.Plan:
    """The plan, or 422 saying what the prompt is missing (no time, no known type) or which field does not hold."""
    auth.require(body["project"])
    try:
        return plan.make(body["prompt"], body["timezone"], body["project"], registry(), settings(), utcnow())
    except PlanRefused as exc:
        abort(422, errors={"json": exc.errors}, message=str(exc))


@blp.route("/planner/plan", operations={"post": "planSchedules"})
class PlannerPlan(MethodView):
    @blp.arguments(PlanRequestSchema)
    @blp.response(200, PlanSchema)
    @blp.alt_response(403, description="The token does not cover this project")
    @blp.alt_response(422, description="No time or no known type in the prompt; params, timing or timezone refused")
    def post(self, body: dict[str, Any]) -> plan.Plan:
        """Read a prompt into the schedules it would make, and the words each field came from; nothing is made"""
        return _plan(body)


@blp.route("/planner/execute", operations={"post": "executePlan"})
class PlannerExecute(MethodView):
    @blp.arguments(ExecuteRequestSchema)
    @blp.response(200, ExecutedSchema)
    @blp.alt_response(403, description="The token does not cover this project")
    @blp.alt_response(409, description="A planned name is another project's schedule, or the schedules file's")
    @blp.alt_response(422, description="No time or no known type in the prompt; params, timing or timezone refused")
    @blp.alt_response(429, description="run_immediately, and the project has its cap of waiting jobs")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make (or update, by name) the schedules a prompt plans, and run each once now if asked"""
        made = _plan(body)
        if body["run_immediately"] and not body["dry_run"]:
            check_waiting(body["project"])
        try:
            outcomes = execute.execute(made, body["dry_run"], body["run_immediately"], utcnow(), enqueue)
        except execute.NameTaken as exc:
            abort(409, message=str(exc))
        return {
            "source": made.source,
            "dry_run": body["dry_run"],
            "schedules": outcomes,
            "unplaced": made.unplaced,
            "model_error": made.model_error,
        }
