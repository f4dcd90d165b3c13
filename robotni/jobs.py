"""Every change to a job row, each a compare-and-set: the row, not the broker, decides what happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
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
