"""Who may call the API: bearer tokens scoped to projects, loopback-only without them, per-token rate, CORS.

Tokens come from ROBOTNI_API_TOKENS and/or ROBOTNI_API_TOKENS_FILE (robotni/tokens.py reads them). Only their
SHA-256 digests are kept; a presented token is hashed and compared to every digest in constant time.
A token is never logged: a token's `name` (file) or the first 8 hex digits of its digest stand for it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, Response, g, request

from robotni.api.blueprint import abort
from robotni.config import Settings, settings
from robotni.tokens import ALL, Token, digest, load

log = logging.getLogger(__name__)
# Probes answer without a token: orchestrators and load balancers cannot send one.
OPEN_PATHS = {"/healthz", "/readyz"}
# No job data here: the OpenAPI document, its viewer and the try-it page (which then needs a token per call).
DOC_PATHS = {"/", "/openapi.json"}
DOC_PREFIXES = ("/docs", "/static/")
# What a browser page on an allowed origin may send and read (CORS); a preflight is cached this long.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match"
CORS_EXPOSE_HEADERS = "Location, ETag, Retry-After, Idempotent-Replayed"
CORS_MAX_AGE = "600"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="robotni"'}


@dataclass
class Bucket:
    """Token bucket: `rate` requests a second on average, `burst` at once."""

    rate: float
    burst: float
    level: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.burst

    def take(self) -> float:
        """0 when a request may go now, else seconds until one may."""
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.rate


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False  # a unix socket or a proxy's odd value: not known to be this machine


class Gate:
    """The request hooks create_app registers; one per app (so per gunicorn worker process)."""

    def __init__(self, current: Settings):
        self.settings = current
        self.tokens = load(current)
        self.buckets = {t.digest: Bucket(current.rate_per_second, current.rate_burst) for t in self.tokens}
        self.lock = threading.Lock()

    def open_path(self, path: str) -> bool:
        return path in OPEN_PATHS or (path == "/metrics" and self.settings.metrics_public)

    def check(self) -> None:
        """before_request: decide who is asking; abort with 401, 403 or 429."""
        g.projects, g.tokens_required = None, bool(self.tokens)
        if request.method == "OPTIONS" or self.open_path(request.path):
            return  # a CORS preflight never carries credentials; the real request that follows does
        if not self.tokens:
            if not _is_loopback(request.remote_addr):
                abort(403, message="no API tokens are configured, so only this machine may call (ROBOTNI_API_TOKENS)")
            return
        if request.path in DOC_PATHS or request.path.startswith(DOC_PREFIXES):
            return
        token = self.match(request.headers.get("Authorization", ""))
        if token is None:
            abort(401, message="send a valid token: Authorization: Bearer <token>", headers=CHALLENGE)
        g.projects, g.token = token.projects, token.label()
        g.callback_token = token.name if token.callback_secret else None
        self.throttle(token)

    def match(self, header: str) -> Token | None:
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        presented_digest = digest(presented.strip())
        found = None
        for token in self.tokens:  # every digest is compared, so the time says nothing about which matched
            if hmac.compare_digest(presented_digest, token.digest):
                found = token
        return found

    def throttle(self, token: Token) -> None:
        with self.lock:
            wait = self.buckets[token.digest].take()
        if wait:
            log.warning("token %s: over %g requests/s; refused", token.label(), self.settings.rate_per_second)
            abort(
                429,
                message="too many requests for this token; retry later",
                headers={"Retry-After": str(math.ceil(wait))},
            )

    def cors(self, response: Response) -> Response:
        """after_request: let the configured origins' pages read responses; no credentials (tokens are headers)."""
        origin = request.headers.get("Origin", "").rstrip("/")
        allowed = self.settings.cors_origins
        if origin and (origin in allowed or ALL in allowed):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
                response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response


def install(app: Flask) -> None:
    """Register the hooks on app; say at start what the API is open to."""
    gate = Gate(settings())
    if gate.tokens:
        log.info("API: %d token(s) configured; every call needs one", len(gate.tokens))
    else:
        log.warning("API: no tokens configured (ROBOTNI_API_TOKENS): serving loopback (this machine) only")
    app.before_request(gate.check)
    app.after_request(gate.cors)


def visible(project: str) -> bool:
    """Whether the caller's token covers project."""
    return g.get("projects") is None or project in g.projects


def tokens_required() -> bool:
    """Whether this API asks every call for a token (else it serves this machine only)."""
    return bool(g.get("tokens_required"))


def callback_token() -> str | None:
    """The caller's token name when it has its own callback secret (robotni/tokens.py), else None."""
    name: str | None = g.get("callback_token")
    return name


def require(project: str) -> None:
    if not visible(project):
        abort(403, message=f"this token does not cover project {project!r}")


def require_all() -> None:
    """For views of the whole machine: a token for every project (or no tokens, on loopback)."""
    if g.get("projects") is not None:
        abort(403, message="this needs a token for all projects ('*')")


def project_filter(requested: list[str] | None) -> list[str] | None:
    """The projects a list may show: the requested ones within the token's; None means no restriction."""
    scope = g.get("projects")
    if scope is None:
        return requested
    return sorted(scope if not requested else scope.intersection(requested))
