"""Live events over Server-Sent Events: a job's status, progress and log, or the status changes of projects.

The process's reader (robotni/api/feeds.py) reads the store for all its streams and wakes those with news; a
stream behind what it keeps reads the store itself, in short transactions. No stream holds a database connection
between events. Every event has an `id:`; a client that reconnects with `Last-Event-ID` (browsers do it
themselves) gets what came after it: status changes come from the event table by id, the log by byte offset.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, request
from flask.views import MethodView
from marshmallow import Schema, fields

from robotni.api import auth, commit_order
from robotni.api.blueprint import Blueprint, abort
from robotni.api.feeds import JobNews, reader
from robotni.api.jobs import job_or_404, utf8_prefix
from robotni.api.schemas import MAX_ID
from robotni.store import events, jobs, queries
from robotni.store.events import iso, snapshot
from robotni.store.models import Event

blp = Blueprint("streams", __name__, url_prefix="/api/worker", description="Live job events (Server-Sent Events)")
# A comment this often keeps proxies from closing a quiet stream, and finds clients that went away.
KEEPALIVE_SECONDS = 15.0
# Log bytes per `log` event, and events per read: a stream catching up (from the store) sends in steps.
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
    """The stream, opened at once: its first line goes out before any event, so the client sees the headers.
    Closing the response (the client went away) closes chunks, which lets go of the reader."""

    def body() -> Iterator[str]:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        yield from chunks

    return Response(body(), mimetype="text/event-stream", headers=HEADERS)


def _parse(text: str, parts: int) -> list[int]:
    try:
        numbers = [int(part) for part in text.split("-")]
    except ValueError:
        numbers = []
    if len(numbers) != parts or min(numbers) < 0 or max(numbers) > MAX_ID:
        abort(422, errors={"headers": {"Last-Event-ID": ["not an event id of this stream"]}}, message="bad id")
    return numbers


def _status(event: Event) -> dict[str, Any]:
    return {"type": event.type, "status": event.status, "at": iso(event.created_at), "job_id": event.job_id}


def _wait(waiter: threading.Event, sent: float) -> bool:
    """Until the reader has news or a keep-alive is due; whether one is due."""
    return not waiter.wait(max(0.0, KEEPALIVE_SECONDS - (time.monotonic() - sent)))


def _job_news(job_id: str, cursor: int, offset: int) -> JobNews:
    """From the reader, or from the store for a stream behind what the reader keeps (complete: caught up)."""
    news = reader.job_news(job_id, cursor, offset)
    if news is not None:
        return news
    job = jobs.get(job_id)
    if job is None:  # removed by the retention
        return JobNews(None, [], b"", complete=True)
    log = queries.output_of(job_id, offset, LOG_EVENT_BYTES) if offset < job.log_bytes else b""
    found = events.after(job_id, None, cursor, EVENTS_PER_READ)
    log_done = not log or offset + len(log) >= job.log_bytes  # nothing read: wait, rather than read again at once
    return JobNews(job, found, log, complete=len(found) < EVENTS_PER_READ and log_done)


def _log_pieces(data: bytes, offset: int, whole: bool) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of at most LOG_EVENT_BYTES each, cut on character boundaries unless whole (the log's end)."""
    while data:
        piece = data[:LOG_EVENT_BYTES]
        if not whole or len(data) > LOG_EVENT_BYTES:
            piece = utf8_prefix(piece)
        if not piece:
            return  # a character whose end has not been shipped yet
        yield offset, piece
        offset, data = offset + len(piece), data[len(piece) :]


def follow_job(job_id: str, cursor: int, offset: int, current: bool) -> Iterator[str]:
    """The job's events after cursor and its log from offset; with current, first the job as it is now (read
    after cursor was, so no change falls between them)."""
    waiter, progress, sent = threading.Event(), None, time.monotonic()
    reader.follow_job(job_id, waiter)
    try:
        job = jobs.get(job_id) if current else None
        if job is not None:
            now = {"type": "job.current", "status": job.status.value, "job": snapshot(job)}
            yield sse("status", now, f"{cursor}-{offset}")
        while True:
            waiter.clear()  # before reading: news that comes meanwhile wakes the wait below
            news = _job_news(job_id, cursor, offset)
            job = news.job
            if job is None:
                yield sse("end", {"status": None})
                return
            out = []
            whole = job.status.is_terminal and offset + len(news.log) >= job.log_bytes
            for start, piece in _log_pieces(news.log, offset, whole):
                offset = start + len(piece)
                out.append(sse("log", {"offset": start, "data": piece.decode(errors="replace")}, f"{cursor}-{offset}"))
            if job.progress is not None and (job.progress, job.progress_message) != progress:
                progress = (job.progress, job.progress_message)
                out.append(
                    sse("progress", {"progress": job.progress, "message": job.progress_message}, f"{cursor}-{offset}")
                )
            for event in news.events:
                cursor = event.id
                out.append(sse("status", {**_status(event), "job": snapshot(job)}, f"{cursor}-{offset}"))
            if job.status.is_terminal and offset >= job.log_bytes and news.complete:
                yield "".join([*out, sse("end", {"status": job.status.value}, f"{cursor}-{offset}")])
                return
            if out:
                yield "".join(out)  # one write for all of a round's events
                sent = time.monotonic()
            if news.complete and _wait(waiter, sent):
                yield ": keep-alive\n\n"
                sent = time.monotonic()
    finally:
        reader.leave_job(job_id, waiter)


def follow_projects(projects: list[str] | None, cursor: int) -> Iterator[str]:
    """Status changes of the projects' jobs (None: every project) after cursor, as they are stored."""
    waiter, sent = threading.Event(), time.monotonic()
    reader.follow_projects(projects, waiter)
    try:
        while True:
            waiter.clear()
            found, kept_upto = reader.project_news(projects, cursor)
            complete = True
            if found is None and kept_upto is None:  # before the reader's first read, which wakes the stream
                found = []
            elif found is None:  # behind what the reader keeps: from the store, up to where the reader is
                found = events.after(None, projects, cursor, EVENTS_PER_READ, kept_upto)
                complete = len(found) < EVENTS_PER_READ
            if found:
                out = [sse("status", {**_status(e), "project": e.project}, str(e.id)) for e in found]
                cursor = found[-1].id
                yield "".join(out)
                sent = time.monotonic()
            if complete and kept_upto is not None:
                cursor = max(cursor, kept_upto)  # none of these projects' events up to there is left
            if complete and _wait(waiter, sent):
                yield ": keep-alive\n\n"
                sent = time.monotonic()
    finally:
        reader.leave_projects(waiter)


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
        if resume is None:
            start = reader.project_start()
            cursor = commit_order.start() if start is None else start
        else:
            cursor = _parse(resume, 1)[0]
        return _stream(follow_projects(projects, cursor))
