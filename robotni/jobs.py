"""Every change to a job row, each a compare-and-set: the row, not the broker, decides what happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from robotni.db import Job, engine, utcnow
from robotni.status import WAITING, JobStatus


def create(*, type: str, project: str, params: Any, queue: str, max_attempts: int, venv: str | None) -> Job:
    now = utcnow()
    job = Job(
        id=str(uuid.uuid4()),
        type=type,
        project=project,
        queue=queue,
        params=params,
        venv=venv,
        status=JobStatus.QUEUED.value,
        attempts=0,
        max_attempts=max_attempts,
        cancel_requested=False,
        log_bytes=0,
        version=1,
        created_at=now,
        updated_at=now,
    )
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        session.add(job)
    return job


def discard(job_id: str) -> None:
    """Undo a create whose message could not be published: the client was told no, so it must never run."""
    with engine().begin() as conn:
        conn.execute(delete(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED.value))


def get(job_id: str) -> Job | None:
    with Session(engine(), expire_on_commit=False) as session:
        return session.get(Job, job_id)


def _set(job_id: str, where: Iterable, **values: Any) -> Job | None:
    """Apply values where the row still matches; return the updated row, or None when it did not match."""
    now = utcnow()
    statement = (
        update(Job)
        .where(Job.id == job_id, *where)
        .values(version=Job.version + 1, updated_at=now, **values)
        .returning(Job)
    )
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        return session.execute(statement).scalar_one_or_none()


def _status_in(statuses: Iterable[JobStatus]):
    return Job.status.in_([s.value for s in statuses])


def claim(job_id: str, worker: str, lease_seconds: float) -> Job | None:
    """queued → running for this worker; None when another worker, a cancel or a duplicate got there first."""
    now = utcnow()
    return _set(
        job_id,
        [Job.status == JobStatus.QUEUED.value],
        status=JobStatus.RUNNING.value,
        worker=worker,
        attempts=Job.attempts + 1,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        progress=None,
        progress_message=None,
        log_bytes=0,
    )


def _owned(job: Job) -> list:
    """The running row as this attempt left it: a reaped or requeued attempt can no longer write."""
    return [
        Job.status == JobStatus.RUNNING.value,
        Job.worker == job.worker,
        Job.attempts == job.attempts,
    ]


def renew(job: Job, lease_seconds: float, changes: dict[str, Any]) -> bool | None:
    """Extend the lease and record visible progress; the cancel mark, or None if the lease was lost."""
    lease = {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}
    if changes:
        row = _set(job.id, _owned(job), **lease, **changes)
    else:
        # Lease only: no version bump, so a client polling with an ETag still gets 304.
        statement = update(Job).where(Job.id == job.id, *_owned(job)).values(**lease).returning(Job)
        with Session(engine(), expire_on_commit=False) as session, session.begin():
            row = session.execute(statement).scalar_one_or_none()
    return None if row is None else row.cancel_requested


def finish(job: Job, status: JobStatus, **values: Any) -> Job | None:
    """running → a terminal status, only if this attempt still owns the row."""
    return _set(
        job.id,
        _owned(job),
        status=status.value,
        finished_at=utcnow(),
        lease_expires_at=None,
        **values,
    )


def cancel(job_id: str) -> Job | None:
    """A waiting job ends now; a running one is marked for its worker to stop. None: no such job."""
    ended = _set(
        job_id,
        [_status_in(WAITING)],
        status=JobStatus.CANCELLED.value,
        cancel_requested=True,
        finished_at=utcnow(),
        error="cancelled before it started",
    )
    if ended is not None:
        return ended
    marked = _set(
        job_id,
        [Job.status == JobStatus.RUNNING.value, Job.cancel_requested.is_(False)],
        cancel_requested=True,
    )
    return marked or get(job_id)


def running_on(worker: str) -> list[str]:
    with engine().connect() as conn:
        rows = conn.execute(select(Job.id).where(Job.worker == worker, Job.status == JobStatus.RUNNING.value))
        return [r[0] for r in rows]


def search(
    *,
    types: list[str] | None = None,
    statuses: list[str] | None = None,
    projects: list[str] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Job]:
    """Newest first; `after` is the (created_at, id) of the last row already seen (keyset paging)."""
    query = select(Job)
    for column, values in ((Job.type, types), (Job.status, statuses), (Job.project, projects)):
        if values:
            query = query.where(column.in_(values))
    if created_after:
        query = query.where(Job.created_at >= created_after)
    if created_before:
        query = query.where(Job.created_at < created_before)
    if after:
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(*after))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query))


def counts(column, where=()) -> dict[str, int]:
    """Jobs per value of column (status, queue, ...), among rows matching where."""
    query = select(column, func.count()).where(*where).group_by(column)
    with engine().connect() as conn:
        return dict(conn.execute(query).all())


def flush(types: list[str] | None = None, projects: list[str] | None = None) -> int:
    """Cancel every waiting job (optionally of some types or projects); how many were cancelled."""
    statement = update(Job).where(_status_in(WAITING))
    if types:
        statement = statement.where(Job.type.in_(types))
    if projects:
        statement = statement.where(Job.project.in_(projects))
    now = utcnow()
    statement = statement.values(
        status=JobStatus.CANCELLED.value,
        cancel_requested=True,
        finished_at=now,
        updated_at=now,
        version=Job.version + 1,
        error="cancelled by a queue flush",
    )
    with engine().begin() as conn:
        return conn.execute(statement).rowcount
