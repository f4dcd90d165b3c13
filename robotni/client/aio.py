"""The asyncio client: the same calls as robotni.client.Client, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from robotni.client import calls
from robotni.client.models import Job
from robotni.client.sse import Event, Parser


class AsyncClient:
    """Robotni's API at base_url (`http://host:8000`), with a bearer token if the API wants one."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0):
        self.http = httpx.AsyncClient(base_url=calls.base(base_url), headers=calls.headers(token), timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def submit(
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
        return calls.job(await self.http.post("/jobs", json=body, headers=extra))

    async def get(self, job_id: str) -> Job:
        return calls.job(await self.http.get(f"/jobs/{job_id}"))

    async def cancel(self, job_id: str) -> Job:
        return calls.job(await self.http.delete(f"/jobs/{job_id}"))

    async def list(
        self, *, type: str | None = None, status: str | None = None, project: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Job]:
        """Every matching job, newest first, page after page as the iteration goes."""
        cursor = None
        while True:
            params = calls.filters(type, status, project, page_size, cursor)
            page = calls.answer(await self.http.get("/jobs", params=params))
            for found in page["jobs"]:
                yield Job.from_api(found)
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def events(self, job_id: str, deadline: float | None = None) -> AsyncIterator[Event]:
        """The job's live events (status, progress, log, end), as the API streams them."""
        timeout = calls.stream_timeout(self.http.timeout, deadline)
        async with self.http.stream("GET", f"/jobs/{job_id}/events", timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                calls.answer(response)
            parser = Parser()
            async for line in response.aiter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it has ended: followed over its event stream, or by polling with its ETag if that breaks."""
        deadline = calls.deadline_of(timeout)
        try:
            async for event in self.events(job_id, deadline):
                if event.event == "end":
                    return await self.get(job_id)
        except httpx.TransportError:
            pass  # a read timeout past the deadline, a proxy that cuts streams: polling decides
        etag, job = None, None
        while True:
            response = await self.http.get(f"/jobs/{job_id}", headers={"If-None-Match": etag} if etag else {})
            if response.status_code != 304:
                job, etag = calls.job(response), response.headers.get("ETag")
            if job is not None and job.ended:
                return job
            calls.check_deadline(job_id, deadline)
            await asyncio.sleep(calls.POLL_SECONDS)

    async def logs(self, job_id: str, follow: bool = True) -> AsyncIterator[str]:
        """The job's output: with follow, live until the job ends; without, what is stored now."""
        if follow:
            async for event in self.events(job_id):
                if event.event == "log":
                    yield event.data["data"]
            return
        offset = 0
        while True:
            chunk = calls.answer(await self.http.get(f"/jobs/{job_id}/logs", params={"offset": offset}))
            if chunk["data"]:
                yield chunk["data"]
            if chunk["next_offset"] >= chunk["size"]:
                return
            offset = chunk["next_offset"]
