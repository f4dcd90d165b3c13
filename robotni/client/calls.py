"""What the sync and async clients share: how each call is asked, and how each answer is read."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

from robotni.client.models import Job, WaitTimeout, error_of

API_PREFIX = "/api/worker"
# wait() without the event stream asks this often; the API answers 304 cheaply while nothing changed.
POLL_SECONDS = 0.5
# A stream's read timeout without a deadline: the API sends a keep-alive every 15 s.
STREAM_READ_SECONDS = 60.0


def base(url: str) -> str:
    return url.rstrip("/") + API_PREFIX


def headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def submission(
    type: str,
    params: dict[str, Any] | None,
    project: str | None,
    idempotency_key: str | None,
    run_at: datetime | None,
    callback_url: str | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers of a submit."""
    body: dict[str, Any] = {"type": type, "params": params or {}}
    optional = {"project": project, "callback_url": callback_url, "run_at": run_at and run_at.isoformat()}
    body.update({name: value for name, value in optional.items() if value is not None})
    return body, {"Idempotency-Key": idempotency_key} if idempotency_key else {}


def filters(
    type: str | None, status: str | None, project: str | None, page_size: int, cursor: str | None
) -> dict[str, Any]:
    given = {"type": type, "status": status, "project": project, "limit": page_size, "cursor": cursor}
    return {name: value for name, value in given.items() if value is not None}


def answer(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; ApiError with the API's message and field errors otherwise."""
    if response.status_code >= 400:
        raise error_of(response.status_code, response.content)
    return response.json()


def job(response: httpx.Response) -> Job:
    return Job.from_api(answer(response))


def stream_timeout(client_timeout: httpx.Timeout, deadline: float | None) -> httpx.Timeout:
    left = STREAM_READ_SECONDS if deadline is None else max(0.01, deadline - time.monotonic())
    return httpx.Timeout(client_timeout.connect, read=left, write=client_timeout.write, pool=client_timeout.pool)


def check_deadline(job_id: str, deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise WaitTimeout(f"job {job_id} did not end in time")


def deadline_of(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout
