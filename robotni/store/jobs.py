"""Every change to a job row, each a compare-and-set: the row, not the broker, decides what happens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from robotni.status import WAITING, JobStatus
from robotni.store import dependencies, events, transitions
from robotni.store.dependencies import Ended
from robotni.store.engine import engine
from robotni.store.models import Job, LogChunk, utcnow
from robotni.store.transitions import BY_ID, MARKED, NOT_MARKED, job_of, transition


def get(job_id: str) -> Job | None:
    with engine().connect() as conn:
        found = conn.execute(BY_ID, {"b_id": job_id}).one_or_none()
    return None if found is None else job_of(found)


def status_in(statuses: Iterable[JobStatus]) -> ColumnElement[bool]:
    return Job.status.in_(list(statuses))


def in_id_order(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    """For an UPDATE of many rows: the rows matching where, locked in id order first (the order every transaction
    takes waiting rows in, so two never wait on each other in a cycle; SQLite runs one write at a time)."""
    return Job.id.in_(select(Job.id).where(*where).order_by(Job.id).with_for_update())


def owned_by(job: Job) -> list[ColumnElement[bool]]:
    """The running row as this attempt left it: a reaped or requeued attempt can no longer write."""
    return [Job.status == JobStatus.RUNNING, Job.worker == job.worker, Job.attempts == job.attempts]


def record_progress(job: Job, lease_seconds: float, changes: dict[str, Any], log_chunk: LogChunk | None) -> bool | None:
    """Extend the lease and record visible progress and output; the cancel mark, or None if the lease was lost."""
    lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    row = transition(job.id, owned_by(job), log_chunk=log_chunk, lease_expires_at=lease_expires_at, **changes)
    return None if row is None else row.cancel_requested


def renew(running: Sequence[Job], lease_seconds: float) -> dict[str, bool]:
    """Extend the leases of running jobs in one statement: each job's cancel mark by id, and a job left out lost its
    lease (reaped or requeued). No version bump, so a client polling with an ETag still gets 304."""
    lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    owned = or_(*(and_(Job.id == job.id, *owned_by(job)) for job in running))
    statement = update(Job).where(owned).values(lease_expires_at=lease_expires_at)
    with engine().begin() as conn:
        return {job_id: cancel for job_id, cancel in conn.execute(statement.returning(Job.id, Job.cancel_requested))}


def _owned(job: Job, lease_expired_by: datetime | None) -> list[ColumnElement[bool]]:
    """owned_by(job), and with lease_expired_by (the reaper's clock) only while the lease is still expired."""
    expired = [] if lease_expired_by is None else [Job.lease_expires_at < lease_expired_by]
    return [*owned_by(job), *expired]


def finish(job: Job, status: JobStatus, lease_expired_by: datetime | None = None, **values: Any) -> Job | None:
    """running → a terminal status, only if this attempt still owns the row."""
    if lease_expired_by is None and set(values) <= transitions.OUTCOME:  # as a worker ends its job: prebuilt
        return transitions.end(job, status, values)
    return _end(job, _owned(job, lease_expired_by), status, **values)


def _end(job: Job, where: list[ColumnElement[bool]], status: JobStatus, **values: Any) -> Job | None:
    return transition(
        job.id,
        where,
        ended=job,
        workflow=job.workflow_id,
        status=status,
        finished_at=utcnow(),
        lease_expires_at=None,
        **values,
    )


def _again_unless_cancelled(
    job: Job, where: list[ColumnElement[bool]], again: dict[str, Any], values: dict[str, Any]
) -> Job | None:
    """running → scheduled or queued (`again`) with this attempt's outcome (`values`), unless the job's cancel was
    asked: then the attempt ends the job `cancelled`, its outcome kept. A job whose cancel was asked never starts
    again. Both are compare-and-sets on the mark, so a cancel that lands after the caller read the row (a reaper
    that read it before the cancel) still wins; the second runs only when the first did not match."""
    row = transition(job.id, [*where, NOT_MARKED], ended=job, workflow=job.workflow_id, **again, **values)
    if row is not None:
        return row
    outcome = values.get("error")
    error = f"cancelled during attempt {job.attempts}, so not run again" + (f"; it ended: {outcome}" if outcome else "")
    return _end(job, [*where, MARKED], JobStatus.CANCELLED, **{**values, "error": error})


def retry_later(job: Job, delay: float, lease_expired_by: datetime | None = None, **values: Any) -> Job | None:
    """running → scheduled for another attempt after delay seconds, keeping this attempt's outcome (or cancelled,
    if its cancel was asked)."""
    again = {
        "status": JobStatus.SCHEDULED,
        "run_at": utcnow() + timedelta(seconds=delay),
        "lease_expires_at": None,
        "worker": None,
    }
    return _again_unless_cancelled(job, _owned(job, lease_expired_by), again, values)


def republished(job: Job) -> bool:
    """Note a new message for a job still queued since its last one; False if something else moved it."""
    with engine().begin() as conn:
        statement = update(Job).where(
            Job.id == job.id, Job.status == JobStatus.QUEUED, Job.published_at == job.published_at
        )
        return conn.execute(statement.values(published_at=utcnow())).rowcount == 1


def release(job_id: str, due_by: datetime) -> Job | None:
    """scheduled → queued once due; the caller publishes the message. None if not released.

    A scheduled job never carries a cancel mark (retry_later ends a marked job instead), but a store written by an
    older release may hold one: it ends cancelled here rather than run.
    """
    due = [Job.status == JobStatus.SCHEDULED, Job.run_at <= due_by]
    row = transition(job_id, [*due, NOT_MARKED], status=JobStatus.QUEUED, run_at=None, published_at=utcnow())
    if row is None and (marked := get(job_id)) is not None and marked.cancel_requested:
        values = _cancelled_waiting("cancelled before it was run again")
        transition(job_id, [*due, MARKED], workflow=marked.workflow_id, **values)
    return row


def requeue(job: Job, **values: Any) -> Job | None:
    """running → queued again (its worker is stopping), keeping this attempt's outcome; no message is out.
    Cancelled instead if its cancel was asked."""
    again = {"status": JobStatus.QUEUED, "worker": None, "lease_expires_at": None, "published_at": None}
    return _again_unless_cancelled(job, owned_by(job), again, values)


def _cancelled_waiting(error: str) -> dict[str, Any]:
    """What a waiting job becomes when cancelled: it ends now and never starts."""
    return {
        "status": JobStatus.CANCELLED,
        "cancel_requested": True,
        "finished_at": utcnow(),
        "run_at": None,
        "error": error,
    }


def cancel(job_id: str, asked_by: str = "") -> Job | None:
    """A waiting job ends now; a running one is marked for its worker to stop. None: no such job.

    `asked_by` names who cancelled when it is not the API (a Celery revoke): the waiting job's error says so.
    """
    job = get(job_id)  # its workflow: a step's cancel takes the workflow's lock
    if job is None:
        return None
    by = f" by {asked_by}" if asked_by else ""
    values = _cancelled_waiting(f"cancelled{by} before it started")
    ended = transition(job_id, [status_in(WAITING)], workflow=job.workflow_id, **values)
    if ended is not None:
        return ended
    marked = transition(
        job_id, [Job.status == JobStatus.RUNNING, Job.cancel_requested.is_(False)], cancel_requested=True
    )
    return marked or get(job_id)


def flush(types: list[str] | None = None, projects: list[str] | None = None) -> int:
    """Cancel every waiting job (optionally of some types or projects) in one statement; how many were."""
    where = [status_in(WAITING)]
    if types:
        where.append(Job.type.in_(types))
    if projects:
        where.append(Job.project.in_(projects))
    statement = update(Job).where(in_id_order(*where), *where)
    values = _cancelled_waiting("cancelled by a queue flush")
    now = values["finished_at"]
    statement = statement.values(version=Job.version + 1, updated_at=now, **values).returning(Job)
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        ended = list(session.execute(statement.execution_options(synchronize_session=False)).scalars())
        delivery_ids = events.record_all(session, ended, "job.cancelled", now)
        waited_on = [Ended(job.id, JobStatus.CANCELLED) for job in ended if job.has_dependents]
        settled = dependencies.settle(session, waited_on, now)
    events.announce(delivery_ids + settled.delivery_ids)
    dependencies.publish(settled.released)
    return len(ended)
