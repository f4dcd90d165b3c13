"""API tokens as configured: ROBOTNI_API_TOKENS (`tokenA:proj1,proj2;tokenB:*`) and ROBOTNI_API_TOKENS_FILE (JSON).

Only their SHA-256 digests are kept. A token of the file may carry its own `callback_secret`: the jobs it submits
with a `callback_url` are signed with it, found again by the token's `name` when the webhooks worker delivers
(robotni/webhooks/delivery.py), so no secret is ever stored in a job row. On the floor because both the API
(robotni/api/auth.py) and the webhooks worker read it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from robotni.config import Settings
from robotni.errors import ConfigError

ALL = "*"
# Long enough that guessing is hopeless even without the rate limit; `secrets.token_urlsafe(32)` gives 43.
MIN_TOKEN_LENGTH = 16
PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes (the specification's range).
SECRET_PREFIX = "whsec_"
SECRET_BYTES = range(24, 65)


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes
    projects: frozenset[str] | None  # None: every project
    callback_secret: str | None = None  # signs the callbacks of the jobs it submits; None: ROBOTNI_CALLBACK_SECRET

    def label(self) -> str:
        return self.name or self.digest.hex()[:8]


def digest(token: str) -> bytes:
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


def _callback_secret(entry: dict[str, object], where: str) -> str | None:
    """The entry's callback_secret, checked (never quoted in an error); it needs a name to be found by."""
    secret = entry.get("callback_secret")
    if secret is None:
        return None
    try:
        key = base64.b64decode(str(secret).removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX) or len(key) not in SECRET_BYTES:
        raise ConfigError(f"{where}: callback_secret must be {SECRET_PREFIX} and the base64 of 24 to 64 bytes")
    if not entry.get("name"):
        raise ConfigError(f"{where}: a token with a callback_secret needs a name (its jobs name it)")
    return secret


def parse_env(value: str) -> list[Token]:
    """`tokenA:proj1,proj2;tokenB:*` (the token is never put in an error message)."""
    tokens = []
    for number, entry in enumerate((e for e in value.split(";") if e.strip()), 1):
        where = f"ROBOTNI_API_TOKENS entry {number}"
        secret, sep, projects = entry.strip().rpartition(":")
        if not sep:
            raise ConfigError(f"{where}: write token:project1,project2 or token:*")
        scope = _projects([p.strip() for p in projects.split(",") if p.strip()], where)
        tokens.append(Token("", digest(_secret(secret, where)), scope))
    return tokens


def _file_digest(entry: dict[str, object], where: str) -> bytes:
    if "token" in entry:
        return digest(_secret(entry["token"], where))
    try:
        found = bytes.fromhex(str(entry["sha256"]))
    except ValueError:
        found = b""
    if len(found) != hashlib.sha256().digest_size:
        raise ConfigError(f"{where}: sha256 must be 64 hex digits")
    return found


def parse_file(path: Path) -> list[Token]:
    """A JSON list of {"name", "token" or "sha256" (hex), "projects": "*" or [names], "callback_secret"}.

    Entries of one name share its callback secret (a token being replaced by a new one keeps its receivers').
    """
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"ROBOTNI_API_TOKENS_FILE {path}: {exc}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"ROBOTNI_API_TOKENS_FILE {path}: must hold a JSON list of tokens")
    tokens: list[Token] = []
    for number, entry in enumerate(entries, 1):
        where = f"ROBOTNI_API_TOKENS_FILE entry {number}"
        if not isinstance(entry, dict) or ("token" in entry) == ("sha256" in entry):
            raise ConfigError(f"{where}: an object with either 'token' or 'sha256', and 'projects'")
        name, secret = str(entry.get("name", "")), _callback_secret(entry, where)
        if name and any(t.name == name and t.callback_secret != secret for t in tokens):
            raise ConfigError(f"{where}: another token named {name!r} has a different callback_secret")
        tokens.append(Token(name, _file_digest(entry, where), _projects(entry.get("projects"), where), secret))
    return tokens


def load(current: Settings) -> list[Token]:
    tokens = parse_env(current.api_tokens)
    if current.api_tokens_file is not None:
        tokens += parse_file(current.api_tokens_file)
    return tokens


def callback_secret(name: str, current: Settings) -> str | None:
    """The callback secret of the tokens named name, read from the file now (None: no such token has one)."""
    if current.api_tokens_file is None:
        return None
    return next((t.callback_secret for t in parse_file(current.api_tokens_file) if t.name == name), None)
