"""The Flask app factory: `gunicorn 'robotni.api.app:create_app()'`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import ServiceUnavailable

from robotni import __version__, logsetup
from robotni.api import auth, metrics
from robotni.api.blueprint import abort
from robotni.broker import publish
from robotni.config import settings
from robotni.store import dependencies, events
from robotni.store.engine import engine

BODY_METHODS = {"POST", "PUT", "PATCH"}
# An oversized body up to this size is read and dropped before the 413: gthread workers close a connection with
# unread input, and the client's kernel then resets it, taking the 413 with it. Beyond it, the reset it is.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_CHUNK = 64 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask("robotni", root_path=str(Path(__file__).parent))  # its static folder is robotni/api/static
    app.url_map.strict_slashes = False  # `/jobs/` is `/jobs`: clients and proxies add the slash, a 308 loses a POST
    logsetup.install_flask(app)  # before anything logs; its hooks run before auth's, so a refusal has a request id too
    metrics.install(app)  # /metrics, and every request's latency (refused ones too)
    app.config.update(
        API_TITLE="Robotni",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        MAX_CONTENT_LENGTH=settings().max_request_bytes,
    )
    app.config.update(config or {})
    api = Api(app)

    from robotni.api import jobs as job_api
    from robotni.api import ops, planner, stats, streams, webhooks
    from robotni.api import schedules as api_schedules
    from robotni.api import workflows as api_workflows

    for blueprint in (
        job_api.blp,
        api_workflows.blp,
        streams.blp,
        webhooks.blp,
        api_schedules.blp,
        planner.blp,
        stats.blp,
        ops.blp,
        ops.health,
    ):
        api.register_blueprint(blueprint)
    auth.install(app)  # first: who asks decides everything else (401/403/429 before 415)
    app.before_request(_refuse_oversized_body)
    app.before_request(_require_json_body)
    app.before_request(_refuse_nul)
    app.register_error_handler(OperationalError, lambda exc: _database_unavailable(api, exc))
    app.add_url_rule("/", "index", lambda: app.send_static_file("index.html"))  # the try-it page, robotni/api/static
    dependencies.publish_released_with(publish.enqueue)  # a cancel here may release a job whose parent it ended
    events.on_deliveries(publish.deliver_all)  # a cancel's webhooks go out as soon as it commits
    engine()  # refuse to start on an outdated schema (the embedded store migrates itself here)
    return app


def _refuse_oversized_body() -> None:
    size, limit = request.content_length or 0, settings().max_request_bytes
    if size > limit:
        stream = request.environ["wsgi.input"]
        left = size if size <= DRAIN_MAX_BYTES else 0
        while left > 0 and (chunk := stream.read(min(DRAIN_CHUNK, left))):
            left -= len(chunk)
        abort(413, message=f"the body is {size} bytes; at most {limit} (ROBOTNI_MAX_REQUEST_BYTES)")


def _require_json_body() -> None:
    if request.method in BODY_METHODS and request.content_length and not request.is_json:
        abort(415, message=f"send the body as application/json, not {request.mimetype or 'no content type'}")


def _refuse_nul() -> None:
    """A NUL (%00) is in no id, filter or header value: PostgreSQL's text cannot even hold one (a 500 there)."""
    if "\0" in request.path:
        abort(404, message="no resource has a NUL character in its path")
    for location, pairs in (("query", request.args.items(multi=True)), ("headers", request.headers.items())):
        bad = sorted({name for name, value in pairs if "\0" in name or "\0" in value})
        if bad:
            abort(422, errors={location: {name: ["contains a NUL character"] for name in bad}}, message="NUL character")


def _database_unavailable(api: Api, exc: OperationalError) -> ResponseReturnValue:
    """A locked or unreachable job store is the service being unavailable, not a bug: 503, never 500."""
    current_app.logger.warning("job store unavailable: %s", exc.orig)
    error = ServiceUnavailable()
    # flask-smorest's handler reads the body from an HTTPException's `data`, which werkzeug does not declare.
    error.data = {"message": "the job store is unavailable (locked or down); try again shortly"}  # type: ignore[attr-defined]
    answer: ResponseReturnValue = api.handle_http_exception(error)  # (body, status, headers)
    return answer
