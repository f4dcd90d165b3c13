"""The job resources under /api/worker: flask-smorest views, errors only through `abort`."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import url_for
from flask.views import MethodView

from robotni import logsetup
from robotni.api import auth
from robotni.api.blueprint import Blueprint, abort
from robotni.api.schemas import (
    AttemptSchema,
    IdempotencyHeaderSchema,
    JobCreateSchema,
    JobPageSchema,
    JobQuerySchema,
    JobSchema,
    LogChunkSchema,
    LogQuerySchema,
)
from robotni.api.webhooks import checked_url
from robotni.broker.publish import enqueue, revoke
from robotni.config import settings
from robotni.errors import UnknownParent
from robotni.status import WAITING, JobStatus
from robotni.store import claims, creation, jobs, queries, waiting
from robotni.store.models import Attempt, Job
from robotni.submission import check
from robotni.submission.waitcap import WaitingCap
from robotni.worktypes.registry import WorkerType, registry

log = logging.getLogger(__name__)
blp = Blueprint("jobs", __name__, url_prefix="/api/worker", description="Submit jobs and follow them")


def job_or_404(job_id: str) -> Job:
    job = jobs.get(job_id)
    # Another project's job is "not found", not 403: a token must not learn which ids exist elsewhere.
    if job is None or not auth.visible(job.project):
        abort(404, message=f"no job with id {job_id}")
    logsetup.bind_job(job)  # this request's log lines are about this job
    return job


def checked_request(body: dict[str, Any]) -> tuple[WorkerType, dict[str, Any]]:
    """The worker type and params with defaults, or 422 naming what is wrong (robotni/submission/check.py)."""
    try:
        return check.checked(registry(), body["type"], body["params"], body["venv"], settings())
    except check.RefusedRequest as exc:
        abort(422, errors={"json": exc.errors}, message=str(exc))


def _count_waiting(project: str) -> int:
    return sum(queries.counts(Job.status, [Job.project == project, jobs.status_in(WAITING)]).values())


_waiting_cap = WaitingCap(_count_waiting)


def check_waiting(project: str) -> None:
    """429 when the project already has its cap of waiting jobs (robotni/submission/waitcap.py).

    Counted before the insert, so submits racing in parallel can each pass: the cap can be overshot by at most
    the number of requests the web server handles at once (gunicorn workers x threads).
    """
    cap = settings().max_waiting_per_project
    waiting = _waiting_cap.full(project, cap)
    if waiting is not None:
        abort(429, message=f"project {project!r} has {waiting} jobs waiting (at most {cap}); retry when some started")


def with_waiting_for(found: list[Job]) -> list[Job]:
    """The jobs, each queued one with `waiting_for` saying why it has not started (robotni/store/waiting.py)."""
    why = waiting.reasons(found, settings().heartbeat_seconds, claims.caps())
    for job in found:
        job.waiting_for = why.get(job.id)  # type: ignore[attr-defined]  # shown by JobSchema, never stored
    return found


def _callback_token(url: str | None) -> str | None:
    """The token whose callback secret signs the job's callback (None: ROBOTNI_CALLBACK_SECRET); 422 unless the
    callback can be signed and its URL is http(s) to public addresses, as a webhook's."""
    if url is None:
        return None
    token = auth.callback_token()
    if token is None and not settings().callback_secret:
        why = "neither ROBOTNI_CALLBACK_SECRET nor a callback_secret of this token is set"
        abort(422, errors={"json": {"callback_url": [why]}}, message="no callbacks")
    checked_url(url, "callback_url")
    return token


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), row_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if "\0" in str(job_id):  # in no id, and PostgreSQL's text cannot hold one (a 500 there)
            raise ValueError("a NUL in the id")
        return datetime.fromisoformat(created), str(job_id)
    except (ValueError, TypeError, RecursionError):  # RecursionError: "[[[[…" nested past json's limit
        abort(422, errors={"query": {"cursor": ["not a cursor this API gave out"]}}, message="bad cursor")


def _naive_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


@blp.route("/jobs", operations={"get": "listJobs", "post": "submitJob"})
class Jobs(MethodView):
    @blp.arguments(JobQuerySchema, location="query")
    @blp.response(200, JobPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List jobs, newest first, filtered by type, status, project and creation time"""
        limit, projects = query["limit"], auth.project_filter(query.get("project"))
        if projects == []:  # none of the asked projects is the token's
            return {"jobs": [], "next_cursor": None}
        found = queries.search(
            types=query.get("type"),
            statuses=query.get("status"),
            projects=projects,
            priorities=query.get("priority"),
            created_after=_naive_utc(query.get("created_after")),
            created_before=_naive_utc(query.get("created_before")),
            after=decode_cursor(query["cursor"]) if query.get("cursor") else None,
            limit=limit + 1,
        )
        more = len(found) > limit
        cursor = encode_cursor(found[limit - 1].created_at, found[limit - 1].id) if more else None
        return {"jobs": with_waiting_for(found[:limit]), "next_cursor": cursor}

    @blp.arguments(JobCreateSchema)
    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.response(202, JobSchema)
    @blp.alt_response(200, schema=JobSchema, description="The job first submitted with this Idempotency-Key")
    @blp.alt_response(403, description="The token does not cover this project")
    @blp.alt_response(422, description="Unknown type, params not matching its schema, a refused venv/script or parent")
    @blp.alt_response(429, description="The project has ROBOTNI_MAX_WAITING_PER_PROJECT jobs waiting, or rate limit")
    @blp.alt_response(503, description="The job store or the broker is unavailable; nothing was accepted")
    def post(self, body: dict[str, Any], headers: dict[str, Any]) -> tuple[Job, int, dict[str, str]]:
        """Submit a job"""
        auth.require(body["project"])
        wtype, params = checked_request(body)
        placement = check.placement(wtype, body["project"], params, body["priority"])
        callback_token = _callback_token(body["callback_url"])
        check_waiting(body["project"])
        try:
            job, created = creation.create(
                type=wtype.name,
                project=body["project"],
                params=params,
                queue=wtype.queue,
                max_attempts=wtype.retry.max_attempts,
                venv=body["venv"],
                idempotency_key=headers.get("idempotency_key"),
                idempotency_window=settings().idempotency_seconds,
                run_at=body["run_at"],
                depends_on=body["depends_on"],
                on_parent_failure=body["on_parent_failure"],
                placement=placement,
                callback_url=body["callback_url"],
                callback_token=callback_token,
            )
        except UnknownParent as exc:
            unknown = exc.args[0]
            errors = {"depends_on": [f"no job {job_id} in this project" for job_id in unknown]}
            message = f"depends_on: no job {unknown[0]} in project {body['project']!r}"
            abort(422, errors={"json": errors}, message=message)
        logsetup.bind_job(job)
        if not created:
            return job, 200, {"Location": url_for("jobs.JobById", job_id=job.id), "Idempotent-Replayed": "true"}
        if job.status != JobStatus.QUEUED:  # scheduled: a reaper publishes it when due; waiting: its last parent's end
            return job, 202, {"Location": url_for("jobs.JobById", job_id=job.id)}
        try:
            enqueue(job)
        except Exception:
            if creation.discard(job.id):
                log.exception("job %s: publishing failed; the job is withdrawn", job.id)
                abort(503, message="the broker is unavailable: the job was not accepted, submit it again later")
            log.exception("job %s: publishing failed, but a worker had taken the job already: accepted", job.id)
            job = jobs.get(job.id) or job
        return job, 202, {"Location": url_for("jobs.JobById", job_id=job.id)}


@blp.route("/jobs/<string:job_id>", operations={"get": "getJob", "delete": "cancelJob"})
class JobById(MethodView):
    @blp.etag
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description="No such job")
    def get(self, job_id: str) -> Job:
        """Get a job: status, result, progress; 304 when If-None-Match holds its current ETag"""
        job = with_waiting_for([job_or_404(job_id)])[0]
        # What a queued job waits for changes without a write to its row: the ETag covers it too.
        blp.set_etag({"id": job.id, "version": job.version, "waiting_for": getattr(job, "waiting_for", None)})
        return job

    @blp.response(200, JobSchema, description="Cancelled (now, or before)")
    @blp.alt_response(202, schema=JobSchema, description="Running: its process group is being stopped")
    @blp.alt_response(404, description="No such job")
    @blp.alt_response(409, description="The job already ended otherwise")
    def delete(self, job_id: str) -> Job | tuple[Job, int]:
        """Cancel a job: a waiting one never starts, a running one is stopped within seconds"""
        job_or_404(job_id)
        job = jobs.cancel(job_id)
        if job is None:
            abort(404, message=f"no job with id {job_id}")
        if job.status == JobStatus.RUNNING:
            try:
                revoke(job.id)
            except Exception:  # the cancel mark on the row stops it anyway, one heartbeat later
                log.warning("job %s: revoke broadcast failed", job.id, exc_info=True)
            return job, 202
        if job.status != JobStatus.CANCELLED:
            abort(409, message=f"job {job_id} already ended as {job.status}; there is nothing to cancel")
        return job


def utf8_prefix(chunk: bytes) -> bytes:
    """Chunk without a multi-byte character cut at its end, so the next read starts on a boundary."""
    for cut in range(min(4, len(chunk) + 1)):
        head = chunk[: len(chunk) - cut]
        try:
            head.decode()
            return head
        except UnicodeDecodeError:
            continue
    return chunk  # not UTF-8 at all: hand it over as it is, replaced characters and all


@blp.route("/jobs/<string:job_id>/logs", operations={"get": "getJobLogs"})
class JobLogs(MethodView):
    @blp.arguments(LogQuerySchema, location="query")
    @blp.response(200, LogChunkSchema)
    @blp.alt_response(404, description="No such job")
    def get(self, query: dict[str, Any], job_id: str) -> dict[str, Any]:
        """Read a job's output from a byte offset; ask again from next_offset to tail it"""
        job = job_or_404(job_id)
        offset, size = query["offset"], job.log_bytes  # output shipped after this read waits for the next ask
        start = min(offset, size)
        chunk = utf8_prefix(queries.output_of(job.id, start, min(query["limit"], size - start)))
        next_offset = start + len(chunk)
        ended = job.status.is_terminal
        return {
            "offset": offset,
            "next_offset": next_offset,
            "size": size,
            "data": chunk.decode(errors="replace"),
            "complete": ended and next_offset >= size,
        }


@blp.route("/jobs/<string:job_id>/attempts", operations={"get": "listJobAttempts"})
class JobAttempts(MethodView):
    @blp.response(200, AttemptSchema(many=True))
    @blp.alt_response(404, description="No such job")
    def get(self, job_id: str) -> list[Attempt]:
        """Each ended attempt of a job: worker, outcome, exit code, error, times"""
        job_or_404(job_id)
        return queries.attempts_of(job_id)
