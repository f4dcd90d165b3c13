"""Live events over Server-Sent Events: a job's status, progress and log, or the status changes of projects.

A stream reads the store in short transactions every STREAM_POLL_SECONDS and holds no database connection in
between. Every event has an `id:`; a client that reconnects with `Last-Event-ID` (browsers do it themselves) gets
what came after it: status changes come from the event table by id, the log by byte offset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import chain
from typing import Any

from flask import Response, request
from flask.views import MethodView
from marshmallow import Schema, fields

from robotni.api import auth
from robotni.api.blueprint import Blueprint, abort
from robotni.api.jobs import job_or_404, utf8_prefix
from robotni.store import events, jobs, queries
from robotni.store.events import iso, snapshot
from robotni.store.models import Event

blp = Blueprint("streams", __name__, url_prefix="/api/worker", description="Live job events (Server-Sent Events)")
# A stream looks at the store this often: one read of the job row by key, more only when it changed.
STREAM_POLL_SECONDS = 0.5
# A comment this often keeps proxies from closing a quiet stream, and finds clients that went away.
KEEPALIVE_SECONDS = 15.0
# Log bytes per `log` event, and events per read: a stream catching up sends in steps.
LOG_EVENT_BYTES = 64 * 1024
EVENTS_PER_READ = 100
# What a browser waits before it reconnects (and resumes) after a dropped stream.
RETRY_MILLISECONDS = 1000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # X-Accel-Buffering: nginx passes it through
STREAM_DOC = "text/event-stream: `status`, `progress`, `log` and `end` events, each with an id"


class StreamQuerySchema(Schema):
    last_event_id = fields.String(metadata={"description": "as the Last-Event-ID header (which wins)"})


class ProjectStreamQuerySchema(StreamQuerySchema):
    project = fields.List(fields.String(), metadata={"description": "one or more projects; none: all the token's"})


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data)}\n\n"


def _last_event_id(query: dict[str, Any]) -> str | None:
    return request.headers.get("Last-Event-ID") or query.get("last_event_id")


def _stream(chunks: Iterator[str]) -> Response:
    """The stream, opened at once: its first line goes out before any event, so the client sees the headers."""
    return Response(chain([f"retry: {RETRY_MILLISECONDS}\n\n"], chunks), mimetype="text/event-stream", headers=HEADERS)


def _parse(text: str, parts: int) -> list[int]:
    try:
        numbers = [int(part) for part in text.split("-")]
    except ValueError:
        numbers = []
    if len(numbers) != parts or min(numbers) < 0:
        abort(422, errors={"headers": {"Last-Event-ID": ["not an event id of this stream"]}}, message="bad id")
    return numbers


def _status(event: Event) -> dict[str, Any]:
    return {"type": event.type, "status": event.status, "at": iso(event.created_at), "job_id": event.job_id}


def _quiet(last: float) -> bool:
    return time.monotonic() - last >= KEEPALIVE_SECONDS


def follow_job(job_id: str, cursor: int, offset: int, current: bool) -> Iterator[str]:
    """The job's events after cursor and its log from offset; with current, first the job as it is now."""
    version, progress, sent = -1, None, time.monotonic()

    def tag() -> str:
        return f"{cursor}-{offset}"

    while True:
        job = jobs.get(job_id)
        if job is None:  # removed by the retention
            yield sse("end", {"status": None})
            return
        if current:
            current = False
            yield sse(
                "status",
                {"type": "job.current", "status": job.status.value, "job": snapshot(job)},
                f"{cursor}-{offset}",
            )
        if job.version != version:
            version = job.version
            while offset < job.log_bytes:
                chunk = utf8_prefix(queries.output_of(job_id, offset, LOG_EVENT_BYTES))
                if not chunk:
                    break
                offset += len(chunk)
                yield sse(
                    "log", {"offset": offset - len(chunk), "data": chunk.decode(errors="replace")}, f"{cursor}-{offset}"
                )
            if job.progress is not None and (job.progress, job.progress_message) != progress:
                progress = (job.progress, job.progress_message)
                yield sse("progress", {"progress": job.progress, "message": job.progress_message}, tag())
            for event in events.after(job_id, None, cursor, EVENTS_PER_READ):
                cursor = event.id
                yield sse("status", {**_status(event), "job": snapshot(job)}, tag())
            sent = time.monotonic()
            if job.status.is_terminal and offset >= job.log_bytes and not events.after(job_id, None, cursor, 1):
                yield sse("end", {"status": job.status.value}, tag())
                return
        elif _quiet(sent):
            sent = time.monotonic()
            yield ": keep-alive\n\n"
        time.sleep(STREAM_POLL_SECONDS)


def follow_projects(projects: list[str] | None, cursor: int) -> Iterator[str]:
    """Status changes of the projects' jobs (None: every project) after cursor, as they are stored."""
    sent = time.monotonic()
    while True:
        found = events.after(None, projects, cursor, EVENTS_PER_READ)
        for event in found:
            cursor = event.id
            yield sse("status", {**_status(event), "project": event.project}, str(cursor))
        if found:
            sent = time.monotonic()
        elif _quiet(sent):
            sent = time.monotonic()
            yield ": keep-alive\n\n"
        if len(found) < EVENTS_PER_READ:
            time.sleep(STREAM_POLL_SECONDS)


@blp.route("/jobs/<string:job_id>/events", operations={"get": "streamJobEvents"})
class JobEvents(MethodView):
    @blp.arguments(StreamQuerySchema, location="query")
    @blp.response(200, description=STREAM_DOC, content_type="text/event-stream")
    @blp.alt_response(404, description="No such job")
    @blp.alt_response(422, description="A Last-Event-ID this stream did not give out")
    def get(self, query: dict[str, Any], job_id: str) -> Response:
        """Follow a job live: its status changes, progress and log, then `end`; resumes after Last-Event-ID"""
        job = job_or_404(job_id)
        resume = _last_event_id(query)
        if resume is None:  # from now on, after the job as it is (and its whole log so far)
            return _stream(follow_job(job.id, events.last_of(job.id), 0, current=True))
        cursor, offset = _parse(resume, 2)
        return _stream(follow_job(job.id, cursor, offset, current=False))


@blp.route("/events", operations={"get": "streamEvents"})
class ProjectEvents(MethodView):
    @blp.arguments(ProjectStreamQuerySchema, location="query")
    @blp.response(
        200, description="text/event-stream: `status` events, each with an id", content_type="text/event-stream"
    )
    @blp.alt_response(422, description="A Last-Event-ID this stream did not give out")
    def get(self, query: dict[str, Any]) -> Response:
        """Follow the status changes of every job of some projects; resumes after Last-Event-ID"""
        projects = auth.project_filter(query.get("project"))
        if projects == []:
            abort(403, message="this token covers none of these projects")
        resume = _last_event_id(query)
        cursor = events.last_id() if resume is None else _parse(resume, 1)[0]
        return _stream(follow_projects(projects, cursor))
