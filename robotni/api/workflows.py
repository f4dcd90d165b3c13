"""The workflow resources under /api/worker: steps and edges submitted together, followed and cancelled as one."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from flask import url_for
from flask.views import MethodView

from robotni.api import auth
from robotni.api.blueprint import Blueprint, abort
from robotni.api.jobs import check_waiting, decode_cursor, encode_cursor, with_waiting_for
from robotni.api.workflow_schemas import (
    WorkflowCreateSchema,
    WorkflowPageSchema,
    WorkflowQuerySchema,
    WorkflowSchema,
)
from robotni.broker.publish import enqueue, revoke
from robotni.config import settings
from robotni.status import JobStatus, WorkflowStatus
from robotni.store import workflows
from robotni.store.models import Job
from robotni.store.workflows import Found
from robotni.submission import workflow
from robotni.submission.check import RefusedRequest
from robotni.worktypes.registry import registry

log = logging.getLogger(__name__)
blp = Blueprint("workflows", __name__, url_prefix="/api/worker", description="Jobs that wait for other jobs")


def _summary(found: Found) -> dict[str, Any]:
    row = found.workflow
    finished_at = None if found.status is WorkflowStatus.RUNNING else found.finished_at
    return {
        "id": row.id,
        "project": row.project,
        "name": row.name,
        "status": found.status,
        "cancel_requested": row.cancel_requested,
        "created_at": row.created_at,
        "finished_at": finished_at,
    }


def _described(found: Found, jobs: list[Job], edges: list[tuple[str, str]]) -> dict[str, Any]:
    """The workflow with its steps, parents before their dependents."""
    parents: dict[str, list[str]] = defaultdict(list)
    for child, parent in edges:
        parents[child].append(parent)
    by_step = {job.step: job for job in jobs if job.step is not None}
    ordered, _ = workflow.order(sorted(by_step), parents)  # stored steps never form a cycle
    steps = [
        {"name": name, "depends_on": sorted(parents[name]), "job_id": by_step[name].id, "job": by_step[name]}
        for name in ordered
    ]
    return _summary(found) | {"steps": steps}


def workflow_or_404(workflow_id: str) -> Found:
    found = workflows.get(workflow_id)
    # Another project's workflow is "not found", as for jobs: a token must not learn which ids exist elsewhere.
    if found is None or not auth.visible(found.workflow.project):
        abort(404, message=f"no workflow with id {workflow_id}")
    return found


@blp.route("/workflows", operations={"get": "listWorkflows", "post": "submitWorkflow"})
class Workflows(MethodView):
    @blp.arguments(WorkflowQuerySchema, location="query")
    @blp.response(200, WorkflowPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List workflows, newest first, filtered by project, status and name"""
        limit, projects = query["limit"], auth.project_filter(query.get("project"))
        if projects == []:  # none of the asked projects is the token's
            return {"workflows": [], "next_cursor": None}
        found = workflows.search(
            projects=projects,
            statuses=query.get("status"),
            names=query.get("name"),
            after=decode_cursor(query["cursor"]) if query.get("cursor") else None,
            limit=limit + 1,
        )
        last = found[limit - 1].workflow if len(found) > limit else None
        cursor = None if last is None else encode_cursor(last.created_at, last.id)
        return {"workflows": [_summary(f) for f in found[:limit]], "next_cursor": cursor}

    @blp.arguments(WorkflowCreateSchema)
    @blp.response(202, WorkflowSchema)
    @blp.alt_response(403, description="The token does not cover this project")
    @blp.alt_response(422, description="A bad step (type, params, venv), an unknown step name, a cycle, too many steps")
    @blp.alt_response(429, description="The project has ROBOTNI_MAX_WAITING_PER_PROJECT jobs waiting, or rate limit")
    @blp.alt_response(503, description="The job store or the broker is unavailable; the workflow was cancelled")
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Submit a workflow: its steps and their edges, all inserted or none"""
        auth.require(body["project"])
        try:
            steps = workflow.checked(registry(), body["project"], body["steps"], settings())
        except RefusedRequest as exc:
            abort(422, errors={"json": exc.errors}, message=str(exc))
        check_waiting(body["project"])
        found, jobs = workflows.create(body["project"], body["name"], steps)
        try:
            for job in jobs:
                if job.status == JobStatus.QUEUED:
                    enqueue(job)
        except Exception:
            log.exception("workflow %s: publishing failed; the workflow is cancelled", found.workflow.id)
            workflows.cancel(found.workflow.id)
            abort(503, message="the broker is unavailable: the workflow was cancelled, submit it again later")
        edges = [(step.name, parent) for step in steps for parent in step.depends_on]
        location = url_for("workflows.WorkflowById", workflow_id=found.workflow.id)
        return _described(found, jobs, edges), 202, {"Location": location}


@blp.route("/workflows/<string:workflow_id>", operations={"get": "getWorkflow", "delete": "cancelWorkflow"})
class WorkflowById(MethodView):
    @blp.response(200, WorkflowSchema)
    @blp.alt_response(404, description="No such workflow")
    def get(self, workflow_id: str) -> dict[str, Any]:
        """Get a workflow: its status and every step with its job"""
        found = workflow_or_404(workflow_id)
        jobs, edges = workflows.steps(workflow_id)
        return _described(found, with_waiting_for(jobs), edges)

    @blp.response(200, WorkflowSchema, description="Cancelled: no step was running (now, or before)")
    @blp.alt_response(202, schema=WorkflowSchema, description="Its running steps are being stopped")
    @blp.alt_response(404, description="No such workflow")
    @blp.alt_response(409, description="The workflow already ended otherwise")
    def delete(self, workflow_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
        """Cancel a workflow: steps not started never start, running ones are stopped as a cancelled job is"""
        workflow_or_404(workflow_id)
        running = workflows.cancel(workflow_id)
        for job_id in running or ():
            try:
                revoke(job_id)
            except Exception:  # the cancel mark on the row stops it anyway, one heartbeat later
                log.warning("job %s: revoke broadcast failed", job_id, exc_info=True)
        found = workflow_or_404(workflow_id)
        if running is None and found.status is not WorkflowStatus.CANCELLED:
            abort(409, message=f"workflow {workflow_id} already ended as {found.status}; there is nothing to cancel")
        described = _described(found, *workflows.steps(workflow_id))
        return (described, 202) if found.status is WorkflowStatus.RUNNING else described
