"""Which waiting job a free pool process takes. The broker's message only wakes a process; the job store decides.

Order within a queue: priority (urgent, normal, batch), then the project with the fewest running jobs on the queue
(fair share), then the oldest. A job is passed over while its concurrency key has `limit` jobs running, its project
has ROBOTNI_PROJECT_MAX_RUNNING, or its type has started `rate` jobs in the rate's window. The claim is one
compare-and-set that counts again under a lock (robotni/store/jobs.py `transition`), so no limit is overshot by
claims racing on several hosts. Every queued job has had one message sent; a message whose job someone else took
wakes a process for another job, and a job over a limit is woken when a slot of its key frees
(robotni/worker/tasks.py) or by the reaper (robotni/worker/reaper.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from robotni.config import settings
from robotni.status import JobStatus
from robotni.store.engine import engine
from robotni.store.jobs import transition
from robotni.store.models import Job, utcnow
from robotni.worktypes.registry import registry
from robotni.worktypes.scheduling import Rate

# Rows read per round: processes racing for the best job fall back on the next ones without reading again.
CANDIDATES = 8
# Rounds of reading before a process gives up its wake-up (each lost round means others claimed 8 jobs).
ROUNDS = 5


@dataclass(frozen=True)
class Caps:
    """The limits that are not on the job row: the per-project cap and each type's rate."""

    project_max_running: int = 0  # 0: none
    rates: Mapping[str, Rate] = field(default_factory=dict)  # type -> its rate


def caps() -> Caps:
    """This process's caps, from its settings and registry."""
    rates = {name: wtype.rate for name, wtype in registry().items() if wtype.rate is not None}
    return Caps(settings().project_max_running, rates)


@dataclass(frozen=True)
class Load:
    """Running jobs now, counted the ways a claim needs; and a rate-limited type's starts in its window."""

    by_key: dict[str, int]
    by_project: dict[str, int]
    by_queue_project: dict[tuple[str, str], int]
    started: dict[str, int]

    def on_queue(self, queue: str) -> dict[str, int]:
        return {project: n for (q, project), n in self.by_queue_project.items() if q == queue}


def load(limits: Caps, now: datetime) -> Load:
    running = (
        select(Job.queue, Job.project, Job.concurrency_key, func.count())
        .where(Job.status == JobStatus.RUNNING)
        .group_by(Job.queue, Job.project, Job.concurrency_key)
    )
    by_key: dict[str, int] = {}
    by_project: dict[str, int] = {}
    by_queue_project: dict[tuple[str, str], int] = {}
    with engine().connect() as conn:
        for queue, project, key, n in conn.execute(running):
            if key is not None:
                by_key[key] = by_key.get(key, 0) + n
            by_project[project] = by_project.get(project, 0) + n
            by_queue_project[queue, project] = by_queue_project.get((queue, project), 0) + n
        started = {name: conn.execute(select(_starts(name, r, now))).scalar_one() for name, r in limits.rates.items()}
    return Load(by_key, by_project, by_queue_project, started)


def _starts(type_name: str, rate: Rate, now: datetime) -> Any:
    """How many jobs of the type started in the rate's window before now (a retried job counts its last start)."""
    started = aliased(Job)
    since = now - timedelta(seconds=rate.per)
    return select(func.count()).where(started.type == type_name, started.started_at >= since).scalar_subquery()


def blocked_projects(current: Load, limits: Caps) -> list[str]:
    cap = limits.project_max_running
    return sorted(p for p, n in current.by_project.items() if cap and n >= cap)


def full_types(current: Load, limits: Caps) -> list[str]:
    return sorted(t for t, rate in limits.rates.items() if current.started.get(t, 0) >= rate.count)


def eligible(current: Load, limits: Caps) -> list[ColumnElement[bool]]:
    """Where-clauses for the queued jobs no limit holds back right now."""
    clauses = []
    if current.by_key:
        running = case(current.by_key, value=Job.concurrency_key, else_=0)
        clauses.append(or_(Job.concurrency_key.is_(None), Job.concurrency_limit > running))
    if projects := blocked_projects(current, limits):
        clauses.append(Job.project.not_in(projects))
    if types := full_types(current, limits):
        clauses.append(Job.type.not_in(types))
    return clauses


def taking_order(queue: str, current: Load) -> list[Any]:
    """Priority, then the project with the fewest running jobs on the queue, then the oldest."""
    fair = current.on_queue(queue)
    share = [case(fair, value=Job.project, else_=0)] if fair else []
    return [Job.priority, *share, Job.created_at, Job.id]


def _best(queue: str, current: Load, limits: Caps) -> Select[str, str, str, str | None, int | None]:
    return (
        select(Job.id, Job.project, Job.type, Job.concurrency_key, Job.concurrency_limit)
        .where(Job.status == JobStatus.QUEUED, Job.queue == queue, *eligible(current, limits))
        .order_by(*taking_order(queue, current))
        .limit(CANDIDATES)
    )


def _guards(candidate: Row[Any], limits: Caps, now: datetime) -> tuple[list[ColumnElement[bool]], list[str]]:
    """The limits counted again inside the claim's update, and the locks that make that count exact."""
    running = aliased(Job)
    guards, locks = [], []
    if candidate.concurrency_key is not None:
        key = select(func.count()).where(running.concurrency_key == candidate.concurrency_key)
        guards.append(key.where(running.status == JobStatus.RUNNING).scalar_subquery() < candidate.concurrency_limit)
        locks.append(f"key:{candidate.concurrency_key}")
    if limits.project_max_running:
        project = select(func.count()).where(running.project == candidate.project)
        guards.append(project.where(running.status == JobStatus.RUNNING).scalar_subquery() < limits.project_max_running)
        locks.append(f"project:{candidate.project}")
    if (rate := limits.rates.get(candidate.type)) is not None:
        guards.append(_starts(candidate.type, rate, now) < rate.count)
        locks.append(f"rate:{candidate.type}")
    return guards, locks


def _take(candidate: Row[Any], worker: str, lease_seconds: float, limits: Caps) -> Job | None:
    now = utcnow()
    guards, locks = _guards(candidate, limits, now)
    return transition(
        candidate.id,
        [Job.status == JobStatus.QUEUED, *guards],
        locks=locks,
        status=JobStatus.RUNNING,
        worker=worker,
        attempts=Job.attempts + 1,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        progress=None,
        progress_message=None,
    )


def claim_next(queue: str, worker: str, lease_seconds: float, limits: Caps) -> Job | None:
    """queued → running for the best eligible job of the queue; None when no job may start now."""
    for _ in range(ROUNDS):
        candidates = _candidates(queue, limits)
        if not candidates:
            return None
        for candidate in candidates:
            job = _take(candidate, worker, lease_seconds, limits)
            if job is not None:
                return job
    return None


def _candidates(queue: str, limits: Caps) -> list[Row[Any]]:
    now = utcnow()
    current = load(limits, now)
    with engine().connect() as conn:
        return list(conn.execute(_best(queue, current, limits)))


def waiting_by_key() -> dict[str, dict[str, int]]:
    """Per concurrency key with jobs queued or running: how many wait, how many run, and the limit."""
    query = (
        select(Job.concurrency_key, Job.status, func.count(), func.max(Job.concurrency_limit))
        .where(Job.concurrency_key.is_not(None), Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .group_by(Job.concurrency_key, Job.status)
    )
    keys: dict[str, dict[str, int]] = {}
    with engine().connect() as conn:
        for key, status, n, limit in conn.execute(query):
            assert key is not None and limit is not None  # the query's filter; a key is always set with its limit
            shown = keys.setdefault(key, {"waiting": 0, "running": 0, "limit": limit})
            shown["waiting" if status == JobStatus.QUEUED else "running"] = n
    return keys


def next_waiting(where: list[ColumnElement[bool]]) -> Job | None:
    """The first queued job matching where, in taking order (for a wake-up once a slot of its key frees)."""
    query = select(Job).where(Job.status == JobStatus.QUEUED, *where).order_by(Job.priority, Job.created_at).limit(1)
    with Session(engine(), expire_on_commit=False) as session:
        return session.scalars(query).first()
