"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from robotni.client import calls
from robotni.client.models import Job
from robotni.client.sse import Event, Parser


class Client:
    """Robotni's API at base_url (`http://host:8000`), with a bearer token if the API wants one."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0):
        self.http = httpx.Client(base_url=calls.base(base_url), headers=calls.headers(token), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def submit(
        self,
        type: str,
        params: dict[str, Any] | None = None,
        *,
        project: str | None = None,
        idempotency_key: str | None = None,
        run_at: datetime | None = None,
        callback_url: str | None = None,
    ) -> Job:
        body, extra = calls.submission(type, params, project, idempotency_key, run_at, callback_url)
        return calls.job(self.http.post("/jobs", json=body, headers=extra))

    def get(self, job_id: str) -> Job:
        return calls.job(self.http.get(f"/jobs/{job_id}"))

    def cancel(self, job_id: str) -> Job:
        return calls.job(self.http.delete(f"/jobs/{job_id}"))

    def list(
        self, *, type: str | None = None, status: str | None = None, project: str | None = None, page_size: int = 100
    ) -> Iterator[Job]:
        """Every matching job, newest first, page after page as the iteration goes."""
        cursor = None
        while True:
            page = calls.answer(self.http.get("/jobs", params=calls.filters(type, status, project, page_size, cursor)))
            yield from (Job.from_api(found) for found in page["jobs"])
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def events(self, job_id: str, deadline: float | None = None) -> Iterator[Event]:
        """The job's live events (status, progress, log, end), as the API streams them."""
        timeout = calls.stream_timeout(self.http.timeout, deadline)
        with self.http.stream("GET", f"/jobs/{job_id}/events", timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                calls.answer(response)
            parser = Parser()
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it has ended: followed over its event stream, or by polling with its ETag if that breaks."""
        deadline = calls.deadline_of(timeout)
        try:
            for event in self.events(job_id, deadline):
                if event.event == "end":
                    return self.get(job_id)
        except httpx.TransportError:
            pass  # a read timeout past the deadline, a proxy that cuts streams: polling decides
        return self._poll(job_id, deadline)

    def _poll(self, job_id: str, deadline: float | None) -> Job:
        etag, job = None, None
        while True:
            response = self.http.get(f"/jobs/{job_id}", headers={"If-None-Match": etag} if etag else {})
            if response.status_code != 304:
                job, etag = calls.job(response), response.headers.get("ETag")
            if job is not None and job.ended:
                return job
            calls.check_deadline(job_id, deadline)
            time.sleep(calls.POLL_SECONDS)

    def logs(self, job_id: str, follow: bool = True) -> Iterator[str]:
        """The job's output: with follow, live until the job ends; without, what is stored now."""
        if follow:
            yield from (e.data["data"] for e in self.events(job_id) if e.event == "log")
            return
        offset = 0
        while True:
            chunk = calls.answer(self.http.get(f"/jobs/{job_id}/logs", params={"offset": offset}))
            if chunk["data"]:
                yield chunk["data"]
            if chunk["next_offset"] >= chunk["size"]:
                return
            offset = chunk["next_offset"]
