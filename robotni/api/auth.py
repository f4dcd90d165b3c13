"""Who may call the API: bearer tokens scoped to projects, loopback-only without them, per-token rate, CORS.

Tokens come from ROBOTNI_API_TOKENS (`tokenA:proj1,proj2;tokenB:*`) and/or ROBOTNI_API_TOKENS_FILE (JSON).
Only their SHA-256 digests are kept; a presented token is hashed and compared to every digest in constant time.
A token is never logged: a token's `name` (file) or the first 8 hex digits of its digest stand for it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, g, request

from robotni.api.blueprint import abort
from robotni.config import Settings, settings
from robotni.errors import ConfigError

log = logging.getLogger(__name__)
ALL = "*"
# Long enough that guessing is hopeless even without the rate limit; `secrets.token_urlsafe(32)` gives 43.
MIN_TOKEN_LENGTH = 16
PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
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


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes
    projects: frozenset[str] | None  # None: every project

    def label(self) -> str:
        return self.name or self.digest.hex()[:8]


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


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _projects(value: object, where: str) -> frozenset[str] | None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: projects must be {ALL!r} or a non-empty list of project names")
    if ALL in names:
        return None
    bad = [n for n in names if not PROJECT_RE.match(n)]
    if bad:
        raise ConfigError(f"{where}: not project names: {', '.join(map(repr, bad))}")
    return frozenset(names)


def _secret(token: object, where: str) -> str:
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH or token != token.strip():
        raise ConfigError(f"{where}: a token must be a string of at least {MIN_TOKEN_LENGTH} characters")
    return token


def parse_env(value: str) -> list[Token]:
    """`tokenA:proj1,proj2;tokenB:*` (the token is never put in an error message)."""
    tokens = []
    for number, entry in enumerate((e for e in value.split(";") if e.strip()), 1):
        where = f"ROBOTNI_API_TOKENS entry {number}"
        secret, sep, projects = entry.strip().rpartition(":")
        if not sep:
            raise ConfigError(f"{where}: write token:project1,project2 or token:*")
        scope = _projects([p.strip() for p in projects.split(",") if p.strip()], where)
        tokens.append(Token("", _digest(_secret(secret, where)), scope))
    return tokens


def parse_file(path: Path) -> list[Token]:
    """A JSON list of {"name", "token" or "sha256" (hex), "projects": "*" or [names]}."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"ROBOTNI_API_TOKENS_FILE {path}: {exc}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"ROBOTNI_API_TOKENS_FILE {path}: must hold a JSON list of tokens")
    tokens = []
    for number, entry in enumerate(entries, 1):
        where = f"ROBOTNI_API_TOKENS_FILE entry {number}"
        if not isinstance(entry, dict) or ("token" in entry) == ("sha256" in entry):
            raise ConfigError(f"{where}: an object with either 'token' or 'sha256', and 'projects'")
        if "token" in entry:
            digest = _digest(_secret(entry["token"], where))
        else:
            try:
                digest = bytes.fromhex(entry["sha256"])
            except (TypeError, ValueError):
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise ConfigError(f"{where}: sha256 must be 64 hex digits")
        tokens.append(Token(str(entry.get("name", "")), digest, _projects(entry.get("projects"), where)))
    return tokens


def load_tokens(current: Settings) -> list[Token]:
    tokens = parse_env(current.api_tokens)
    if current.api_tokens_file is not None:
        tokens += parse_file(current.api_tokens_file)
    return tokens


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False  # a unix socket or a proxy's odd value: not known to be this machine


class Gate:
    """The request hooks create_app registers; one per app (so per gunicorn worker process)."""

    def __init__(self, current: Settings):
        self.settings = current
        self.tokens = load_tokens(current)
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
        self.throttle(token)

    def match(self, header: str) -> Token | None:
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        digest = _digest(presented.strip())
        found = None
        for token in self.tokens:  # every digest is compared, so the time says nothing about which matched
            if hmac.compare_digest(digest, token.digest):
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
