"""What the client hands back: typed jobs, and the API's errors as exceptions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from robotni.errors import RobotniError

TERMINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})
_TIMES = ("run_at", "created_at", "started_at", "finished_at", "updated_at")


class ApiError(RobotniError):
    """The API said no: its status code, its message and, for a 422, the errors per field."""

    def __init__(self, status: int, message: str, errors: dict[str, Any] | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.errors = status, message, errors or {}


class WaitTimeout(RobotniError):
    """The job did not end within the time given to wait()."""


@dataclass(frozen=True)
class Job:
    id: str
    type: str
    project: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    exit_code: int | None = None
    attempts: int = 0
    max_attempts: int = 1
    progress: float | None = None
    progress_message: str | None = None
    log_bytes: int = 0
    queue: str = ""
    venv: str | None = None
    worker: str | None = None
    cancel_requested: bool = False
    callback_url: str | None = None
    run_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Job:
        known = {f.name for f in fields(cls)}  # a newer API's extra fields are left out, not an error
        values = {k: v for k, v in data.items() if k in known}
        for name in _TIMES:
            if values.get(name):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


def error_of(status: int, body: bytes) -> ApiError:
    """flask-smorest's error body ({"code", "status", "message", "errors"}) as an ApiError."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ApiError(status, body.decode(errors="replace")[:500] or "no message")
    return ApiError(status, str(data.get("message") or data.get("status") or ""), data.get("errors"))
