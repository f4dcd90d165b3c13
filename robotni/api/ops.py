"""Operations: status, worker types, queue control, health probes."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import text

from robotni import __version__
from robotni.api import auth
from robotni.api.blueprint import Blueprint, abort
from robotni.api.schemas import (
    CallerSchema,
    FlushResultSchema,
    FlushSchema,
    QueueSchema,
    StatusSchema,
    TypeSchema,
)
from robotni.celery import app as celery_app
from robotni.config import settings
from robotni.status import JobStatus, Priority
from robotni.store import claims, jobs, queries, waiting, worker_beats
from robotni.store.engine import engine
from robotni.store.models import Job
from robotni.worktypes import environments
from robotni.worktypes.registry import WorkerType, registry

blp = Blueprint("ops", __name__, url_prefix="/api/worker", description="Workers, queues and worker types")
health = Blueprint("health", __name__, description="Probes for orchestrators and load balancers")
# How many jobs /queue shows per section; the full lists are GET /jobs with a status filter.
QUEUE_LISTING_LIMIT = 100
# A readiness probe must answer before the orchestrator's own timeout (often 1 to 5 s).
BROKER_PROBE_SECONDS = 2


@blp.route("/status", operations={"get": "getStatus"})
class Status(MethodView):
    @blp.response(200, StatusSchema)
    @blp.alt_response(403, description="The token does not cover all projects ('*'): this shows every project")
    def get(self) -> dict[str, Any]:
        """Queue depths, live workers with their running jobs, job counts per status"""
        auth.require_all()
        queued = queries.counts(Job.queue, [Job.status == JobStatus.QUEUED])
        queues = {name: queued.get(name, 0) for name in registry().queues} | queued
        workers = worker_beats.alive(settings().heartbeat_seconds)
        consumed = {queue for worker in workers for queue in worker["queues"]}
        summary = waiting.summary(queues, consumed, claims.caps())
        return {
            "version": __version__,
            "queues": queues,
            "queues_without_worker": sorted(set(queues) - consumed),
            "waiting_by_priority": {
                p.value: sum(counts[p.value] for counts in summary.by_queue.values()) for p in Priority
            },
            "waiting_by_queue": summary.by_queue,
            "held": summary.held,
            "concurrency_keys": summary.keys,
            "jobs": {status.value: 0 for status in JobStatus} | queries.counts(Job.status),
            "workers": workers,
        }


@blp.route("/whoami", operations={"get": "getCaller"})
class Caller(MethodView):
    @blp.response(200, CallerSchema)
    def get(self) -> dict[str, Any]:
        """Whether this API needs a token, and the projects the caller's token covers (null: every project)"""
        return {"token_required": auth.tokens_required(), "projects": auth.project_filter(None)}


@blp.route("/types", operations={"get": "listTypes"})
class Types(MethodView):
    @blp.response(200, TypeSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Every worker type: description, queue, params JSON Schema, limits, retry policy"""
        consumed = worker_beats.live_queues(settings().heartbeat_seconds)
        return [_described(wtype, consumed) for _, wtype in sorted(registry().items())]


@blp.route("/queue", operations={"get": "getQueue"})
class Queue(MethodView):
    @blp.response(200, QueueSchema)
    def get(self) -> dict[str, list[Job]]:
        """Jobs waiting to start, waiting for a later start, and cancelled (newest first, 100 each)"""
        sections = {"pending": JobStatus.QUEUED, "scheduled": JobStatus.SCHEDULED, "cancelled": JobStatus.CANCELLED}
        projects = auth.project_filter(None)  # a token's own projects only
        return {
            name: queries.search(statuses=[status.value], projects=projects, limit=QUEUE_LISTING_LIMIT)
            for name, status in sections.items()
        }


@blp.route("/queue/flush", operations={"post": "flushQueue"})
class QueueFlush(MethodView):
    @blp.arguments(FlushSchema)
    @blp.response(200, FlushResultSchema)
    @blp.alt_response(403, description="A named project is not the token's")
    def post(self, body: dict[str, Any]) -> dict[str, int]:
        """Cancel every waiting job, optionally only of some types or projects"""
        for project in body.get("project") or ():
            auth.require(project)
        projects = auth.project_filter(body.get("project"))  # a scoped token flushes only its own projects
        return {"cancelled": jobs.flush(types=body.get("type"), projects=projects)}


@health.route("/healthz", operations={"get": "getHealth"})
class Healthz(MethodView):
    @health.response(200)
    def get(self) -> dict[str, str]:
        """The process answers"""
        return {"status": "ok"}


@health.route("/readyz", operations={"get": "getReadiness"})
class Readyz(MethodView):
    @health.response(200)
    @health.alt_response(503, description="The job store or the broker cannot be reached; the message says which")
    def get(self) -> dict[str, str]:
        """The job store and the broker can be reached"""
        try:
            with engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            abort(503, message=f"job store unreachable: {exc.__class__.__name__}")
        try:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=BROKER_PROBE_SECONDS)
        except Exception as exc:
            abort(503, message=f"broker unreachable: {exc.__class__.__name__}")
        return {"status": "ready"}


def _described(wtype: WorkerType, consumed: set[str]) -> dict[str, Any]:
    """A worker type as GET /types shows it, with whether its environment is ready and its queue consumed."""
    env = environments.status(wtype.env, settings())
    return {
        "name": wtype.name,
        "description": wtype.description,
        "queue": wtype.queue,
        "soft_time_limit": wtype.soft_time_limit,
        "hard_time_limit": wtype.hard_time_limit,
        "params_schema": wtype.params_schema,
        "retry": vars(wtype.retry),
        "limits": vars(wtype.limits),
        "environment": env.environment,
        "isolation": wtype.isolation.value,
        "preload": list(wtype.preload),
        "ready": env.ready,
        "error": env.error,
        "queue_has_worker": wtype.queue in consumed,
        "priority": wtype.priority.value,
        "concurrency": None if wtype.concurrency is None else vars(wtype.concurrency),
        "rate": None if wtype.rate is None else wtype.rate.text,
    }
