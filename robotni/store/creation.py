"""Creating job rows: a new job (queued, scheduled or waiting for its parents), idempotent submits, and withdrawing
a job whose message could not be sent. A row's later changes are compare-and-sets: robotni/store/jobs.py's, a
claim's (claims.py), a parent's end (dependencies.py) and a workflow's cancel (workflows.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from robotni.status import JobStatus, ParentFailure, Priority
from robotni.store import dependencies, events
from robotni.store.dependencies import Ended
from robotni.store.engine import engine
from robotni.store.models import Dependency, Job, utcnow
from robotni.store.transitions import JOB_COLUMNS, JOBS

INSERT_JOB = insert(JOBS)


@dataclass(frozen=True)
class Placement:
    """Where a job stands among the waiting ones: its priority, and the concurrency key it counts against."""

    priority: Priority = Priority.NORMAL
    concurrency_key: str | None = None
    concurrency_limit: int | None = None


def new_job(
    now: datetime,
    *,
    type: str,
    project: str,
    queue: str,
    params: Any,
    venv: str | None,
    max_attempts: int,
    run_at: datetime | None = None,
    parents: int = 0,
    on_parent_failure: ParentFailure | None = None,
    placement: Placement = Placement(),
) -> Job:
    """An unsaved row: queued (its message sent at once), scheduled until run_at, or waiting for its parents."""
    status = JobStatus.WAITING if parents else JobStatus.SCHEDULED if run_at else JobStatus.QUEUED
    return Job(
        id=str(uuid.uuid4()),
        type=type,
        project=project,
        queue=queue,
        params=params,
        venv=venv,
        status=status,
        attempts=0,
        lost_attempts=0,
        max_attempts=max_attempts,
        cancel_requested=False,
        log_bytes=0,
        version=1,
        created_at=now,
        updated_at=now,
        run_at=run_at,
        published_at=now if status == JobStatus.QUEUED else None,
        parents_left=parents,
        has_dependents=False,
        on_parent_failure=None if on_parent_failure is None else on_parent_failure.value,
        priority=placement.priority,
        concurrency_key=placement.concurrency_key,
        concurrency_limit=placement.concurrency_limit,
    )


def create(
    *,
    type: str,
    project: str,
    params: Any,
    queue: str,
    max_attempts: int,
    venv: str | None,
    idempotency_key: str | None = None,
    idempotency_window: float = 0,
    run_at: datetime | None = None,
    depends_on: Sequence[str] = (),
    on_parent_failure: ParentFailure = ParentFailure.CANCEL,
    placement: Placement = Placement(),
    callback_url: str | None = None,
    callback_token: str | None = None,
) -> tuple[Job, bool]:
    """Insert a queued job: (job, True); or (the first job, False) for a key this project used in the window.

    With run_at, the job is scheduled and nothing is published: a reaper releases it when due. With depends_on
    it waits for those jobs (UnknownParent if one is not of this project); it comes back queued (publish it) or
    cancelled when they had all ended already.
    """
    now = utcnow()
    job = new_job(
        now,
        type=type,
        project=project,
        queue=queue,
        params=params,
        venv=venv,
        max_attempts=max_attempts,
        run_at=run_at,
        parents=len(depends_on),
        on_parent_failure=on_parent_failure if depends_on else None,
        placement=placement,
    )
    job.idempotency_key, job.callback_url, job.callback_token = idempotency_key, callback_url, callback_token
    for _ in range(2):
        try:
            with Session(engine(), expire_on_commit=False) as session, session.begin():
                if depends_on:
                    session.add(job)
                    session.flush()  # the insert first: on SQLite it takes the write lock (dependencies.py)
                    dependencies.attach(session, job, depends_on)
                else:  # a statement: a flush of the unit of work cost a fifth of a submit's CPU
                    values = {column: job.__dict__[column] for column in JOB_COLUMNS if column in job.__dict__}
                    session.connection().execute(INSERT_JOB, values)
            return job, True
        except IntegrityError:
            if idempotency_key is None:
                raise
        first = _by_idempotency_key(project, idempotency_key)
        if first is not None and first.created_at >= now - timedelta(seconds=idempotency_window):
            return first, False
        _expire_idempotency_key(project, idempotency_key, now - timedelta(seconds=idempotency_window))
    raise IntegrityError("idempotency key stayed taken", None, Exception())


def _by_idempotency_key(project: str, key: str) -> Job | None:
    with Session(engine(), expire_on_commit=False) as session:
        query = select(Job).where(Job.project == project, Job.idempotency_key == key)
        return session.scalars(query).one_or_none()


def _expire_idempotency_key(project: str, key: str, older_than: datetime) -> None:
    """A key past its window may be used again: the old job keeps running, without its key."""
    with engine().begin() as conn:
        statement = update(Job).where(Job.project == project, Job.idempotency_key == key, Job.created_at < older_than)
        conn.execute(statement.values(idempotency_key=None))


def discard(job_id: str) -> bool:
    """Undo a create whose message could not be published: the client was told no, so it must never run. False
    when the job was no longer queued: a claim takes the best queued job of its queue, not only its own message's,
    so a worker may have taken this one first; it then runs, and counts as accepted.

    A job submitted meanwhile with this one in its depends_on sees it end as cancelled.
    """
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        withdrawn = delete(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED).returning(Job.has_dependents)
        row = session.execute(withdrawn.execution_options(synchronize_session=False)).first()
        if row is None:
            return False
        session.execute(delete(Dependency).where(Dependency.job_id == job_id))
        settled = dependencies.settle(session, [Ended(job_id, JobStatus.CANCELLED)] if row.has_dependents else [])
    events.announce(settled.delivery_ids)
    dependencies.publish(settled.released)
    return True
