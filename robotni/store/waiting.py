"""Why queued jobs wait: each job's reason (for its view), and the counts behind /status and /metrics.

The counts read indexes only, and only where a limit binds now: queued jobs per queue and priority (the queue,
status, priority index), the running jobs' concurrency keys (the running rows, as a claim reads them), and the
queued jobs of each key, project or type held back (the indexes that lead with key, project or type, then status).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, func, select

from robotni.status import JobStatus, Priority
from robotni.store import claims, worker_beats
from robotni.store.engine import engine
from robotni.store.models import Job, utcnow

# Names shown per reason (and concurrency keys): a key made of a params field may have thousands of values, and
# each is a Prometheus series. The names holding the most jobs are shown; the rest add up under OTHERS.
NAMES_SHOWN = 20
OTHERS = "(others)"


class Hold(str, Enum):
    """What holds queued jobs back now; the name under it is a queue, a key, a project or a type."""

    WORKER = "worker"  # no live worker consumes the queue
    CONCURRENCY_KEY = "concurrency_key"  # the key has `limit` jobs running
    PROJECT_MAX_RUNNING = "project_max_running"  # the project has ROBOTNI_PROJECT_MAX_RUNNING running
    RATE = "rate"  # the type started `rate` jobs in the rate's window

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Summary:
    by_queue: dict[str, dict[str, int]]  # queue -> priority -> queued jobs
    held: dict[str, dict[str, int]]  # Hold -> name -> queued jobs it holds back (a job held twice counts twice)
    keys: dict[str, dict[str, int]]  # concurrency key with jobs running -> running, limit, waiting


def reasons(jobs: Iterable[Job], beat_seconds: float, limits: claims.Caps) -> dict[str, str]:
    """job id -> what it waits for, for each queued job among jobs (none queued: nothing read)."""
    queued = [job for job in jobs if job.status == JobStatus.QUEUED]
    if not queued:
        return {}
    live_queues = worker_beats.live_queues(beat_seconds)
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
    return f"its turn: a free pool slot of queue {job.queue!r}"


def summary(queues: Iterable[str], live_queues: set[str], limits: claims.Caps) -> Summary:
    """Queued jobs of the queues per priority, what holds queued jobs back now, and the busiest keys."""
    by_queue = _queued_by(Job.queue, sorted(set(queues)), group=Job.priority)
    current = claims.load(limits, utcnow())
    running = _running_keys()
    waiting = _queued_by(Job.concurrency_key, list(running))
    full = [key for key, (n, limit) in running.items() if n >= limit]
    held = {
        Hold.WORKER: {q: sum(by_queue[q].values()) for q in by_queue if q not in live_queues},
        Hold.CONCURRENCY_KEY: {key: waiting.get(key, {}).get("", 0) for key in full},
        Hold.PROJECT_MAX_RUNNING: _totals(_queued_by(Job.project, claims.blocked_projects(current, limits))),
        Hold.RATE: _totals(_queued_by(Job.type, claims.full_types(current, limits))),
    }
    busiest = sorted(running, key=lambda key: (-running[key][0], key))[:NAMES_SHOWN]
    return Summary(
        by_queue={q: {p.value: counts.get(p.value, 0) for p in Priority} for q, counts in by_queue.items()},
        held={str(hold): _capped({k: n for k, n in names.items() if n}) for hold, names in held.items()},
        keys={
            key: {"running": running[key][0], "limit": running[key][1], "waiting": waiting.get(key, {}).get("", 0)}
            for key in busiest
        },
    )


def _running_keys() -> dict[str, tuple[int, int]]:
    """Each concurrency key with jobs running: how many, and its limit (few rows: at most one per pool process)."""
    query = (
        select(Job.concurrency_key, func.count(), func.max(Job.concurrency_limit))
        .where(Job.status == JobStatus.RUNNING, Job.concurrency_key.is_not(None))
        .group_by(Job.concurrency_key)
    )
    with engine().connect() as conn:
        return {key: (n, limit) for key, n, limit in conn.execute(query) if key is not None and limit is not None}


def _queued_by(column: Any, values: list[str], group: Any = None) -> dict[str, dict[str, int]]:
    """value -> (group's value, or "") -> queued jobs, for the given values of column: one index range each."""
    if not values:
        return {}
    columns: list[ColumnElement[Any]] = [column, func.count()] if group is None else [column, group, func.count()]
    where = [column.in_(values), Job.status == JobStatus.QUEUED]
    query = select(*columns).where(*where).group_by(*columns[:-1])
    found: dict[str, dict[str, int]] = {value: {} for value in values}
    with engine().connect() as conn:
        for row in conn.execute(query):
            found[row[0]][str(row[1]) if group is not None else ""] = row[-1]
    return found


def _totals(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    return {name: sum(groups.values()) for name, groups in counts.items()}


def _capped(names: dict[str, int]) -> dict[str, int]:
    """The NAMES_SHOWN names holding the most jobs; the others' jobs added up under OTHERS."""
    ranked = sorted(names, key=lambda name: (-names[name], name))
    shown = {name: names[name] for name in ranked[:NAMES_SHOWN]}
    if rest := sum(names[name] for name in ranked[NAMES_SHOWN:]):
        shown[OTHERS] = rest
    return shown
