"""Why a queued job has not started: no worker for its queue, a limit that holds it back, or its turn."""

from __future__ import annotations

from collections.abc import Iterable

from robotni.status import JobStatus
from robotni.store import claims
from robotni.store.models import Job, utcnow


def reasons(jobs: Iterable[Job], live_queues: set[str], limits: claims.Caps) -> dict[str, str]:
    """job id -> what it waits for, for each queued job among jobs."""
    queued = [job for job in jobs if job.status == JobStatus.QUEUED]
    if not queued:
        return {}
    current = claims.load(limits, utcnow())
    capped, full = set(claims.blocked_projects(current, limits)), set(claims.full_types(current, limits))
    return {job.id: _reason(job, live_queues, current, limits, capped, full) for job in queued}


def _reason(
    job: Job, live_queues: set[str], current: claims.Load, limits: claims.Caps, capped: set[str], full: set[str]
) -> str:
    if job.queue not in live_queues:
        return f"a worker: no live worker consumes queue {job.queue!r}"
    key, limit = job.concurrency_key, job.concurrency_limit
    if key is not None and limit is not None and current.by_key.get(key, 0) >= limit:
        return f"concurrency key {key!r}: {current.by_key[key]} running, at its limit of {limit}"
    if job.project in capped:
        return f"project {job.project!r}: {current.by_project[job.project]} running (ROBOTNI_PROJECT_MAX_RUNNING)"
    if job.type in full:
        rate = limits.rates[job.type]
        started = current.started[job.type]
        return f"rate of type {job.type!r}: {started} started in the last {rate.per:g} s, at its rate of {rate.text}"
    return f"its turn: a free pool process of queue {job.queue!r}"
