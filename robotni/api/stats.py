"""Figures and the export under /api/worker: the dashboard's stats, the report, the store as JSON Lines."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import Response, stream_with_context
from flask.views import MethodView

from robotni.api import auth
from robotni.api.blueprint import Blueprint
from robotni.api.stats_schemas import ExportQuerySchema, ReportQuerySchema, ReportSchema, StatsQuerySchema, StatsSchema
from robotni.store import stats
from robotni.store.engine import engine
from robotni.store.models import utcnow
from robotni.transfer.export import Scope, lines
from robotni.worktypes.registry import registry

blp = Blueprint("stats", __name__, url_prefix="/api/worker", description="Figures over time, and the store's export")
NDJSON = "application/x-ndjson"


@blp.route("/stats", operations={"get": "getStats"})
class Stats(MethodView):
    @blp.arguments(StatsQuerySchema, location="query")
    @blp.response(200, StatsSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The dashboard's figures: jobs ended and waiting per bucket, run times per type, the queues now"""
        found = stats.dashboard(engine(), utcnow(), query["window"], auth.project_filter(query.get("project")))
        known = {row["queue"] for row in found["queues"]}
        idle = [{"queue": name, "queued": 0, "running": 0} for name in registry().queues if name not in known]
        found["queues"] = sorted(found["queues"] + idle, key=lambda row: row["queue"])
        return found


@blp.route("/report", operations={"get": "getReport"})
class Report(MethodView):
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, ReportSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The daily report's figures: jobs by type and status, run times, repeated failures, queue waits"""
        return stats.report(engine(), utcnow(), query["hours"], auth.project_filter(query.get("project")))


@blp.route("/export", operations={"get": "exportStore"})
class Export(MethodView):
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.response(200, content_type=NDJSON, description="JSON Lines, as `robotni export` writes (docs/export.md)")
    @blp.alt_response(403, description="The token does not cover all projects ('*'): the export holds every project")
    def get(self, query: dict[str, Any]) -> Response:
        """The job store as JSON Lines, for `robotni import`: schedules, webhooks (no secrets), jobs, attempts"""
        auth.require_all()
        since = query.get("since")
        scope = Scope(
            project=query.get("project"),
            since=None if since is None else since.astimezone(UTC).replace(tzinfo=None),
            jobs=query["jobs"],
            logs=query["logs"],
        )
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        return Response(
            stream_with_context(lines(engine(), scope)),
            mimetype=NDJSON,
            headers={"Content-Disposition": f'attachment; filename="robotni-export-{stamp}.jsonl"'},
        )
