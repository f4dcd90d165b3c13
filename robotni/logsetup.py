"""Log lines: one JSON object per line for collectors, or text for a person at a terminal (ROBOTNI_LOG_FORMAT).

Every line carries the context it was written in: job_id, type, project and attempt while a worker runs a
job (also in the lease keeper's lines about it) or while the API answers about one; request_id on every line
the API writes while answering a request (the client's X-Request-ID, or a new one; echoed in the response).
The context lives in contextvars: set by the task and the request hooks, read by a filter on the handler,
so every library's lines get it too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from robotni.broker import RUN_JOB_TASK
from robotni.config import LOG_FORMATS, settings
from robotni.errors import ConfigError

if TYPE_CHECKING:  # for annotations only: the functions import Flask and Celery where they use them
    from celery import Task
    from celery.apps.worker import Worker
    from flask import Flask, Response

requests_log = logging.getLogger("robotni.requests")
JOB_FIELDS = ("job_id", "type", "project", "attempt")
# A client's X-Request-ID is kept only when it is short and plain, so it cannot forge or flood log lines.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Probes and scrapes come every few seconds: their request lines are debug, not info.
QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}
# Attributes every record has; any other attribute came in as `extra` (or from our filter) and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_job: ContextVar[dict[str, Any] | None] = ContextVar("robotni_log_job", default=None)
_request_id: ContextVar[str | None] = ContextVar("robotni_log_request_id", default=None)


def job_fields(job: Any) -> dict[str, Any]:
    return {"job_id": job.id, "type": job.type, "project": job.project, "attempt": job.attempts}


def bind_job(job: Any = None, **fields: Any) -> None:
    """From here on in this context (a task, a request), lines carry the job's fields (or the given ones)."""
    values = job_fields(job) if job is not None else {}
    values.update({k: v for k, v in fields.items() if v is not None})
    _job.set(values or None)


@contextmanager
def about_job(job: Any) -> Iterator[None]:
    token = _job.set(job_fields(job))
    try:
        yield
    finally:
        _job.reset(token)


def clear() -> None:
    _job.set(None)
    _request_id.set(None)


def _received_job(record: logging.LogRecord) -> dict[str, Any] | None:
    """Celery's "Task robotni.run_job[<id>] received" line, in the worker's main process: the task id is the job id."""
    data = getattr(record, "data", None)
    if isinstance(data, dict) and data.get("name") == RUN_JOB_TASK and data.get("id"):
        return {"job_id": data["id"]}
    return None


class ContextFilter(logging.Filter):
    """Puts the job and request fields of the current context on each record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _job.get() or _received_job(record) or {}
        for key, value in fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        request_id = _request_id.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields and any `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_"))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [job_id=… type=… project=… attempt=… request_id=…] message` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        context = " ".join(f"{k}={getattr(record, k)}" for k in (*JOB_FIELDS, "request_id") if hasattr(record, k))
        line = f"{_time(record)} {record.levelname} {record.name}{f' [{context}]' if context else ''} {record.message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def formatter(stream: TextIO | None) -> logging.Formatter:
    choice = settings().log_format
    if choice not in LOG_FORMATS:
        raise ConfigError(f"ROBOTNI_LOG_FORMAT={choice!r}: use one of {', '.join(LOG_FORMATS)}")
    if choice == "auto":
        choice = "text" if stream is not None and stream.isatty() else "json"
    return TextFormatter() if choice == "text" else JsonFormatter()


def style(handler: logging.Handler) -> logging.Handler:
    """Robotni's formatter and context filter on handler (also used for gunicorn's own handlers)."""
    handler.setFormatter(formatter(getattr(handler, "stream", None)))
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())
    return handler


def configure(level: int | str = logging.INFO, path: str | None = None) -> None:
    """Robotni's handler on the root logger (stderr, or the file at path), replacing one set up before."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "robotni", False)]:
        root.removeHandler(old)
    handler = style(logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr))
    handler.robotni = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a line like the others, not raw text on stderr


# --- the API ----------------------------------------------------------------------------------------------


def install_flask(app: Flask) -> None:
    """JSON (or text) lines for the API; a request id and one line per request."""
    from flask.logging import default_handler

    configure()
    app.logger.removeHandler(default_handler)  # the root handler has it; Flask's own would print twice
    app.before_request(_request_started)
    app.after_request(_request_done)
    app.teardown_request(lambda _exc: clear())


def _request_started() -> None:
    from flask import g, request

    clear()  # a worker thread answers one request after another in the same context
    given = request.headers.get("X-Request-ID", "")
    _request_id.set(given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex)
    g.robotni_log_started = time.perf_counter()


def _request_done(response: Response) -> Response:
    from flask import g, request

    request_id = _request_id.get() or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    elapsed_ms = (time.perf_counter() - g.get("robotni_log_started", time.perf_counter())) * 1000
    requests_log.log(
        logging.DEBUG if request.path in QUIET_PATHS else logging.INFO,
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        response.status_code,
        elapsed_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "route": request.url_rule.rule if request.url_rule else None,
            "http_status": response.status_code,
            "duration_ms": round(elapsed_ms, 3),
            "remote_addr": request.remote_addr,
        },
    )
    return response


# --- Celery workers and beat --------------------------------------------------------------------------------


def install_celery() -> None:
    """Robotni's logging for `celery worker` and `celery beat` (Celery then configures none of its own)."""
    from celery import signals

    signals.setup_logging.connect(_setup_celery_logging, weak=False)
    signals.celeryd_after_setup.connect(_banner_as_a_line, weak=False)
    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_done, weak=False)


# Celery's own line per task received and succeeded: Robotni's job lines already say it, with the job's fields.
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def _setup_celery_logging(loglevel: int | str | None = None, logfile: str | None = None, **_: Any) -> None:
    level = (
        logging.getLevelNamesMapping().get(loglevel.upper(), logging.INFO)
        if isinstance(loglevel, str)
        else loglevel or logging.INFO
    )
    configure(level, logfile or None)
    if level >= logging.INFO:  # at DEBUG a developer wants everything
        for name in CELERY_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def _banner_as_a_line(sender: str, instance: Worker, **_: Any) -> None:
    """In JSON, the worker's start-up banner (printed to stdout next) is one line like the rest instead."""
    robotni_handlers = [h for h in logging.getLogger().handlers if getattr(h, "robotni", False)]
    in_json = all(isinstance(h.formatter, JsonFormatter) for h in robotni_handlers)
    # celery-types leaves out Worker.quiet (set by its on_before_init).
    if instance.quiet or not in_json:  # type: ignore[attr-defined]
        return
    instance.quiet = True  # type: ignore[attr-defined]
    logging.getLogger("celery.apps.worker").info(
        "%s starting", sender, extra={"startup": instance.startup_info(artlines=False)}
    )


def _task_started(
    task: Task[Any, Any] | None = None, task_id: str | None = None, args: Sequence[Any] | None = None, **_: Any
) -> None:
    clear()
    if task is not None and task.name == RUN_JOB_TASK:
        # The type and project travel as message headers (robotni.broker.publish.enqueue); the attempt is known once
        # the task has claimed the row, which then binds the whole job.
        request = task.request
        bind_job(
            job_id=args[0] if args else task_id,
            type=getattr(request, "robotni_type", None),
            project=getattr(request, "robotni_project", None),
        )


def _task_done(**_: Any) -> None:
    clear()
