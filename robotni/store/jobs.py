"""Every change to a job row, each a compare-and-set: the row, not the broker, decides what happens."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, Update, bindparam, func, insert, literal, select, update
from sqlalchemy.orm import Session

from robotni.status import WAITING, JobStatus
from robotni.store import dependencies, events
from robotni.store.dependencies import Ended
from robotni.store.engine import engine
from robotni.store.models import Attempt, Job, LogChunk, utcnow

# Whether the job's cancel was asked: a job so marked never starts again (retry_later, requeue, release, a claim).
NOT_MARKED = Job.cancel_requested.is_(False)
MARKED = Job.cancel_requested.is_(True)
# The hot paths (a job's read, start and end, a submit) run Core statements built once on the tables: building,
# keying and running ORM statements cost more CPU than SQLite took to run them (docs/benchmarks.md, session 6).
JOBS = cast(Table, Job.__table__)
JOB_COLUMNS = tuple(JOBS.c.keys())
BY_ID = select(JOBS).where(JOBS.c.id == bindparam("b_id"))
ADD_ATTEMPT = insert(cast(Table, Attempt.__table__))
_new_job = Job.__mapper__.class_manager.new_instance


def get(job_id: str) -> Job | None:
    with engine().connect() as conn:
        found = conn.execute(BY_ID, {"b_id": job_id}).one_or_none()
    return None if found is None else _job_of(found)


def _job_of(found: Row[Any]) -> Job:
    """The Job a row of every column describes, set as the ORM's loading sets one: a Core read or RETURNING costs
    a third of an ORM one (a job's GET, its start and its end)."""
    job: Job = _new_job()
    job.__dict__.update(zip(JOB_COLUMNS, found, strict=False))
    return job


def _lock_id(name: str) -> int:
    """A stable signed 64-bit number for a lock name (PostgreSQL's advisory locks are numbered)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def workflow_lock(workflow_id: str) -> int:
    """The advisory lock of a workflow's steps: shared to change one's status, exclusive to cancel them all."""
    return _lock_id(f"workflow:{workflow_id}")


def transition(
    job_id: str,
    where: Iterable[ColumnElement[bool]],
    ended: Job | None = None,
    log_chunk: LogChunk | None = None,
    locks: Iterable[str] = (),
    workflow: str | None = None,
    **values: Any,
) -> Job | None:
    """Apply values where the row still matches; the updated row, or None when it did not match.

    With `ended`, the attempt that `ended` describes is recorded in the same transaction; so is `log_chunk`, which
    only the attempt that owns the row can add; so is the event of a status change, with its webhook deliveries.
    A row that reaches a terminal status settles its dependents in the same transaction too (dependencies.py),
    with their events; the jobs that released are published after the commit.
    `locks` are taken first and held to the commit, so a `where` that counts other rows (robotni/store/claims.py)
    sees every change made under the same lock: PostgreSQL's advisory locks; SQLite needs none, as it runs one
    write at a time. `workflow` (the job's, for a step's change of status) is taken before them, shared: a
    workflow's cancel holds it alone (robotni/store/workflows.py), so no step changes status under the cancel.
    """
    now = utcnow()
    statement = (
        update(Job)
        .where(Job.id == job_id, *where)
        .values(version=Job.version + 1, updated_at=now, **values)
        # Whether any webhook subscription is on comes back with the row: without one, the event needs no more reads.
        .returning(Job, events.SUBSCRIBED if "status" in values else literal(False))
        # A fresh session holds no object to bring up to date: skipping that saves ~0.2 ms of CPU per change.
        .execution_options(synchronize_session=False)
    )
    return _apply(
        lambda session: session.execute(statement).one_or_none(), now, values, ended, log_chunk, locks, workflow
    )


def _apply(
    change: Callable[[Session], Any],
    now: datetime,
    values: dict[str, Any],
    ended: Job | None = None,
    log_chunk: LogChunk | None = None,
    locks: Iterable[str] = (),
    workflow: str | None = None,
) -> Job | None:
    """Run a transition's UPDATE … RETURNING (change: its row, the job and whether a subscription is on, or None),
    and what goes with it in the same transaction (transition() says what); values are the changes it makes."""
    settled = dependencies.Settled([], [])
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            if workflow is not None:
                session.execute(select(func.pg_advisory_xact_lock_shared(workflow_lock(workflow))))
            for name in sorted(set(locks)):  # one order everywhere: two claims never wait on each other in a cycle
                session.execute(select(func.pg_advisory_xact_lock(_lock_id(name))))
        row, subscribed = change(session) or (None, False)
        if row is not None and log_chunk is not None:
            session.add(log_chunk)
        if row is not None and ended is not None:
            attempt = {
                "job_id": ended.id,
                "number": ended.attempts,
                "worker": ended.worker,
                "status": values.get("status", row.status),
                "exit_code": values.get("exit_code"),
                "error": values.get("error"),
                "started_at": ended.started_at,
                "finished_at": now,
            }
            session.connection().execute(ADD_ATTEMPT, attempt)
        delivery_ids = (
            events.record(session, row, events.event_type(row.status, ended is not None), now, subscribed)
            if row is not None and "status" in values
            else []
        )
        if row is not None and "status" in values and row.status.is_terminal and row.has_dependents:
            settled = dependencies.settle(session, [Ended(row.id, row.status)], now)
    events.announce(delivery_ids + settled.delivery_ids)
    dependencies.publish(settled.released)
    return row


def _prebuilt(where: list[ColumnElement[bool]], **values: Any) -> Update:
    """A transition built once on the table, its changing values bound parameters (named b_…, as a column's name is
    taken): building, keying and running an ORM statement cost more CPU than SQLite took to run it, for the two
    changes every job makes."""
    changes = {"version": JOBS.c.version + 1, "updated_at": bindparam("b_now"), **values}
    statement = update(JOBS).where(JOBS.c.id == bindparam("b_id"), *where).values(**changes)
    return statement.returning(*JOBS.c, events.SUBSCRIBED)


def _run_prebuilt(statement: Update, params: dict[str, Any]) -> Callable[[Session], tuple[Job, bool] | None]:
    def change(session: Session) -> tuple[Job, bool] | None:
        found = session.connection().execute(statement, params).one_or_none()
        if found is None:
            return None
        return _job_of(found), found.subscribed

    return change


# queued → running for a job no limit guards (claims.take without guards).
START = _prebuilt(
    [JOBS.c.status == JobStatus.QUEUED, JOBS.c.cancel_requested.is_(False)],
    status=JobStatus.RUNNING,
    worker=bindparam("b_worker"),
    attempts=JOBS.c.attempts + 1,
    started_at=bindparam("b_now"),
    lease_expires_at=bindparam("b_lease"),
    progress=None,
    progress_message=None,
)
# running → its end by the attempt that owns it, with its outcome and nothing else (finish, as a worker ends a job).
END = _prebuilt(
    [
        JOBS.c.status == JobStatus.RUNNING,
        JOBS.c.worker == bindparam("b_worker"),
        JOBS.c.attempts == bindparam("b_attempts"),
    ],
    status=bindparam("b_status"),
    finished_at=bindparam("b_now"),
    lease_expires_at=None,
    result=bindparam("b_result", type_=JOBS.c.result.type),
    error=bindparam("b_error"),
    exit_code=bindparam("b_exit_code"),
)
OUTCOME = frozenset({"result", "error", "exit_code"})


def start(job_id: str, worker: str, lease_seconds: float) -> Job | None:
    """queued → running, unless the job was taken, cancelled or marked meanwhile."""
    now = utcnow()
    params = {"b_id": job_id, "b_worker": worker, "b_now": now, "b_lease": now + timedelta(seconds=lease_seconds)}
    return _apply(_run_prebuilt(START, params), now, {"status": JobStatus.RUNNING})


def status_in(statuses: Iterable[JobStatus]) -> ColumnElement[bool]:
    return Job.status.in_(list(statuses))


def in_id_order(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    """For an UPDATE of many rows: the rows matching where, locked in id order first (the order every transaction
    takes waiting rows in, so two never wait on each other in a cycle; SQLite runs one write at a time)."""
    return Job.id.in_(select(Job.id).where(*where).order_by(Job.id).with_for_update())


def owned_by(job: Job) -> list[ColumnElement[bool]]:
    """The running row as this attempt left it: a reaped or requeued attempt can no longer write."""
    return [Job.status == JobStatus.RUNNING, Job.worker == job.worker, Job.attempts == job.attempts]


def renew(job: Job, lease_seconds: float, changes: dict[str, Any], log_chunk: LogChunk | None) -> bool | None:
    """Extend the lease and record visible progress and output; the cancel mark, or None if the lease was lost."""
    lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    if changes:
        row = transition(job.id, owned_by(job), log_chunk=log_chunk, lease_expires_at=lease_expires_at, **changes)
    else:
        # Lease only: no version bump, so a client polling with an ETag still gets 304.
        statement = (
            update(Job).where(Job.id == job.id, *owned_by(job)).values(lease_expires_at=lease_expires_at).returning(Job)
        )
        with Session(engine(), expire_on_commit=False) as session, session.begin():
            row = session.execute(statement).scalar_one_or_none()
    return None if row is None else row.cancel_requested


def _owned(job: Job, lease_expired_by: datetime | None) -> list[ColumnElement[bool]]:
    """owned_by(job), and with lease_expired_by (the reaper's clock) only while the lease is still expired."""
    expired = [] if lease_expired_by is None else [Job.lease_expires_at < lease_expired_by]
    return [*owned_by(job), *expired]


def finish(job: Job, status: JobStatus, lease_expired_by: datetime | None = None, **values: Any) -> Job | None:
    """running → a terminal status, only if this attempt still owns the row."""
    if lease_expired_by is None and set(values) <= OUTCOME:
        now = utcnow()
        outcome = {f"b_{name}": values.get(name) for name in OUTCOME}
        params = {"b_id": job.id, "b_worker": job.worker, "b_attempts": job.attempts, "b_status": status, **outcome}
        changes = {"status": status, **values}
        return _apply(_run_prebuilt(END, {**params, "b_now": now}), now, changes, ended=job, workflow=job.workflow_id)
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
