"""The job API under /api/worker: flask-smorest resources, errors only through `abort`."""

from __future__ import annotations

import logging

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from robotni import jobs
from robotni.errors import InvalidParams, UnknownType
from robotni.registry import registry
from robotni.schemas import JobCreateSchema, JobSchema
from robotni.tasks import enqueue

log = logging.getLogger(__name__)
blp = Blueprint("jobs", __name__, url_prefix="/api/worker", description="Submit jobs and follow them")


def _job_or_404(job_id: str):
    job = jobs.get(job_id)
    if job is None:
        abort(404, message=f"no job with id {job_id}")
    return job


@blp.route("/jobs")
class Jobs(MethodView):
    @blp.arguments(JobCreateSchema)
    @blp.response(202, JobSchema)
    @blp.alt_response(422, description="Unknown type or params that do not match its schema")
    @blp.alt_response(503, description="The job store or the broker is unavailable; nothing was accepted")
    def post(self, body):
        """Submit a job"""
        try:
            wtype = registry()[body["type"]]
            params = wtype.validate(body["params"])
        except UnknownType as exc:
            abort(422, errors={"json": {"type": [str(exc)]}}, message=str(exc))
        except InvalidParams as exc:
            errors = {"json": {"params": exc.args[0]}}
            abort(422, errors=errors, message="params do not match the type's schema")
        job = jobs.create(
            type=wtype.name,
            project=body["project"],
            params=params,
            queue=wtype.queue,
            max_attempts=wtype.retry.max_attempts,
            venv=None,
        )
        try:
            enqueue(job)
        except Exception:
            log.exception("job %s: publishing failed; the job is withdrawn", job.id)
            jobs.discard(job.id)
            abort(503, message="the broker is unavailable: the job was not accepted, submit it again later")
        return job, 202, {"Location": url_for("jobs.JobById", job_id=job.id)}


@blp.route("/jobs/<string:job_id>")
class JobById(MethodView):
    @blp.etag
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description="No such job")
    def get(self, job_id):
        """Get a job: status, result, progress; 304 when If-None-Match holds its current ETag"""
        job = _job_or_404(job_id)
        blp.set_etag({"id": job.id, "version": job.version})
        return job
