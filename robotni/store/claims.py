"""Which waiting job a free pool slot takes. The broker's message only wakes a process; the job store decides.

Order within a queue: priority (urgent, normal, batch), then the project with the fewest running jobs on the queue
(fair share), then the oldest. A job is passed over while its concurrency key has `limit` jobs running, its project
has ROBOTNI_PROJECT_MAX_RUNNING, or its type has started `rate` jobs in the rate's window. The claim is one
compare-and-set that counts again under a lock (robotni/store/transitions.py `transition`), so no limit is
overshot by claims racing on several hosts. Every queued job has had one message sent; a message whose job
someone else took wakes a process for another job, and a job over a limit is woken when a slot of its key frees
(robotni/worker/tasks.py) or by the reaper (robotni/worker/reaper.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Connection, Row, Select, String, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from robotni.config import settings
from robotni.status import JobStatus, Priority
from robotni.store import transitions
from robotni.store.engine import engine, reading
from robotni.store.models import Job, utcnow
from robotni.store.transitions import NOT_MARKED, transition
from robotni.worktypes.registry import registry
from robotni.worktypes.scheduling import Rate

# Rows read per round: processes racing for the best job fall back on the next ones without reading again.
CANDIDATES = 8
# Projects tied for the next turn read one by one (an index seek each); more are read in one walk of the queue.
FEW_PROJECTS = 8
# Rounds of reading before a process gives up its wake-up (each lost round means others claimed 8 jobs).
ROUNDS = 5
# The other rows a claim's compare-and-set counts. One alias for the process: a new one per claim cost SQLAlchemy
# more than the claim's SQL (each of its columns adapted again: 1 ms of CPU a keyed claim, docs/benchmarks.md).
OTHERS = aliased(Job, name="others")
# Queues whose last full read found several projects waiting, a concurrency key held or a rate-limited type among
# the first jobs, in this process: their claims skip the one-statement claim and the one-project read, which would
# cost them statements more (docs/benchmarks.md).
_shared_queues: set[str] = set()
# What a claim reads of a candidate.
HEAD_COLUMNS = (Job.id, Job.project, Job.type, Job.priority, Job.created_at, Job.concurrency_key, Job.concurrency_limit)


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
    with reading() as conn:
        for queue, project, key, n in conn.execute(running):
            if key is not None:
                by_key[key] = by_key.get(key, 0) + n
            by_project[project] = by_project.get(project, 0) + n
            by_queue_project[queue, project] = by_queue_project.get((queue, project), 0) + n
        started = {name: conn.execute(select(_starts(name, r, now))).scalar_one() for name, r in limits.rates.items()}
    return Load(by_key, by_project, by_queue_project, started)


def _starts(type_name: str, rate: Rate, now: datetime) -> Any:
    """How many jobs of the type started in the rate's window before now (a retried job counts its last start)."""
    since = now - timedelta(seconds=rate.per)
    return select(func.count()).where(OTHERS.type == type_name, OTHERS.started_at >= since).scalar_subquery()


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


def _fair_groups(queue: str, current: Load, conn: Connection) -> list[tuple[tuple[int, int], list[str]]]:
    """The projects waiting on the queue, grouped by (their most urgent waiting priority, their running jobs on the
    queue), best group first: fair share ranks projects in Python, so each read below can follow an index."""
    span = select(
        select(func.min(Job.project)).where(*_waiting(queue)).scalar_subquery(),
        select(func.max(Job.project)).where(*_waiting(queue)).scalar_subquery(),
    )
    first, last = conn.execute(span).one()
    if first is None:
        return []
    if first == last:  # one project waits: nothing to share (two index seeks told us)
        return [((0, 0), [first])]
    fair = current.on_queue(queue)
    heads = select(Job.project, func.min(Job.priority)).where(*_waiting(queue)).group_by(Job.project)
    groups: dict[tuple[int, int], list[str]] = {}
    for project, rank in conn.execute(heads):
        groups.setdefault((Priority(rank).rank, fair.get(project, 0)), []).append(project)
    return sorted(groups.items())


def _waiting(queue: str | BindParameter[str]) -> list[ColumnElement[bool]]:
    return [Job.queue == queue, Job.status == JobStatus.QUEUED]


def _heads(queue: str, projects: list[str], where: list[ColumnElement[bool]], conn: Connection) -> list[Row[Any]]:
    """The projects' first eligible jobs in priority and age order: one index seek per project when they are few,
    else one walk of the queue's priority index that stops at the first CANDIDATES of them."""
    # A queued job never carries a cancel mark, but a store written by an older release may hold one: never started.
    best = select(*HEAD_COLUMNS).where(*_waiting(queue), NOT_MARKED, *where)
    best = best.order_by(Job.priority, Job.created_at, Job.id)
    if len(projects) > FEW_PROJECTS:
        return list(conn.execute(best.where(Job.project.in_(projects)).limit(CANDIDATES)))
    found: list[Row[Any]] = []
    for project in projects:
        found += conn.execute(best.where(Job.project == project).limit(CANDIDATES))
    return found


def _one_project_read() -> Select[Any]:
    """The first CANDIDATES waiting jobs of the queue (a bound parameter), each with the first and the last project
    waiting on it. Built once: building and keying the statement cost more than SQLite took to run it."""
    queue = bindparam("queue", type_=String)
    ends = [select(agg(Job.project)).where(*_waiting(queue)).correlate(None) for agg in (func.min, func.max)]
    span = [end.scalar_subquery() for end in ends]
    best = select(*HEAD_COLUMNS, span[0].label("first"), span[1].label("last")).where(*_waiting(queue), NOT_MARKED)
    return best.order_by(Job.priority, Job.created_at, Job.id).limit(CANDIDATES)


ONE_PROJECT_READ = _one_project_read()


def _one_project_candidates(queue: str, rates: Mapping[str, Rate]) -> list[Row[Any]] | None:
    """The common case in one read: one project waits on the queue and none of its first jobs has a concurrency
    key or a rate-limited type, so with no project cap set neither fair share nor a limit can change the order (a
    rate holds back only its own type's jobs). None: the full read decides."""
    with reading() as conn:
        rows = list(conn.execute(ONE_PROJECT_READ, {"queue": queue}))
    if rows and (rows[0].first != rows[0].last or not all(_plain(row, rates) for row in rows)):
        return None
    return rows


def _plain(row: Row[Any], rates: Mapping[str, Rate]) -> bool:
    """A candidate no limit of its own can hold back: no concurrency key, no rate on its type."""
    return row.concurrency_key is None and row.type not in rates


def _candidates(queue: str, limits: Caps) -> list[Row[Any]]:
    """The best eligible jobs of the queue: priority, then the project with the fewest running jobs on the queue
    (fair share), then the oldest. Groups of projects are read best first, until no later group can do better."""
    if not limits.project_max_running and queue not in _shared_queues:
        plain = _one_project_candidates(queue, limits.rates)
        if plain is not None:
            return plain
        _shared_queues.add(queue)  # its next claims read in full at once, without the one-project try
    current = load(limits, utcnow())
    where, fair = eligible(current, limits), current.on_queue(queue)

    def rank(row: Row[Any]) -> tuple[int, int, datetime, str]:
        return row.priority.rank, fair.get(row.project, 0), row.created_at, row.id

    found: list[Row[Any]] = []
    with reading() as conn:
        groups = _fair_groups(queue, current, conn)
        for bound, projects in groups:
            if found and bound > rank(min(found, key=rank))[:2]:
                break  # every job of this group and the next ranks after one already found
            found += _heads(queue, projects, where, conn)
    if (
        len(groups) == 1
        and len(groups[0][1]) == 1
        and not current.by_key
        and all(_plain(r, limits.rates) for r in found)
    ):
        _shared_queues.discard(queue)  # one project again, no key held, no rated type first: one statement again
    return sorted(found, key=rank)[:CANDIDATES]


def _guards(candidate: Row[Any], limits: Caps, now: datetime) -> tuple[list[ColumnElement[bool]], list[str]]:
    """The limits counted again inside the claim's update, and the locks that make that count exact."""
    guards, locks = [], []
    if candidate.concurrency_key is not None:
        key = select(func.count()).where(OTHERS.concurrency_key == candidate.concurrency_key)
        guards.append(key.where(OTHERS.status == JobStatus.RUNNING).scalar_subquery() < candidate.concurrency_limit)
        locks.append(f"key:{candidate.concurrency_key}")
    if limits.project_max_running:
        project = select(func.count()).where(OTHERS.project == candidate.project)
        guards.append(project.where(OTHERS.status == JobStatus.RUNNING).scalar_subquery() < limits.project_max_running)
        locks.append(f"project:{candidate.project}")
    if (rate := limits.rates.get(candidate.type)) is not None:
        guards.append(_starts(candidate.type, rate, now) < rate.count)
        locks.append(f"rate:{candidate.type}")
    return guards, locks


def take(
    job_id: str,
    worker: str,
    lease_seconds: float,
    guards: Sequence[ColumnElement[bool]] = (),
    locks: Sequence[str] = (),
) -> Job | None:
    """queued → running for this job, where the guards still hold: one compare-and-set by primary key."""
    if not guards and not locks:
        return transitions.start(job_id, worker, lease_seconds)
    now = utcnow()
    return transition(
        job_id,
        [Job.status == JobStatus.QUEUED, NOT_MARKED, *guards],
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
    """queued → running for the best eligible job of the queue; None when no job may start now.

    The common case is one statement (transitions.start_first): one project waits and its first job is plain, so
    nothing could go before it. Otherwise, or with a project cap, the reads below rank the candidates first.
    """
    if not limits.project_max_running and queue not in _shared_queues:
        job = transitions.start_first(queue, sorted(limits.rates), worker, lease_seconds)
        if job is not None:
            return job
    for _ in range(ROUNDS):
        candidates = _candidates(queue, limits)
        if not candidates:
            return None
        for candidate in candidates:
            job = take(candidate.id, worker, lease_seconds, *_guards(candidate, limits, utcnow()))
            if job is not None:
                return job
    return None


def next_waiting(where: list[ColumnElement[bool]]) -> Job | None:
    """The first queued job matching where, in taking order (for a wake-up once a slot of its key frees)."""
    query = select(Job).where(Job.status == JobStatus.QUEUED, *where).order_by(Job.priority, Job.created_at).limit(1)
    with Session(engine(), expire_on_commit=False) as session:
        return session.scalars(query).first()
