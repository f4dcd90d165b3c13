"""The mechanism of a job row's changes: one compare-and-set per change, with what goes in its transaction (the
attempt, the event and its deliveries, the dependents), and the two changes every job makes built once.
The changes themselves, by name, are robotni/store/jobs.py's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, Update, bindparam, func, insert, literal, select, update
from sqlalchemy.orm import Session, configure_mappers

from robotni.status import JobStatus
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
# An ORM query configures the mappers before an instance's attributes can be read; job_of's may be the first.
configure_mappers()


def job_of(found: Row[Any]) -> Job:
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
    return apply(
        lambda session: session.execute(statement).one_or_none(), now, values, ended, log_chunk, locks, workflow
    )


def apply(
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


def _prebuilt(where: list[ColumnElement[bool]], row: Any = None, **values: Any) -> Update:
    """A transition built once on the table, its changing values bound parameters (named b_…, as a column's name is
    taken): building, keying and running an ORM statement cost more CPU than SQLite took to run it, for the two
    changes every job makes. `row` picks the job (by default the one whose id is bound as b_id)."""
    changes = {"version": JOBS.c.version + 1, "updated_at": bindparam("b_now"), **values}
    statement = update(JOBS).where(JOBS.c.id == (bindparam("b_id") if row is None else row), *where).values(**changes)
    return statement.returning(*JOBS.c, events.SUBSCRIBED)


def _run_prebuilt(statement: Update, params: dict[str, Any]) -> Callable[[Session], tuple[Job, bool] | None]:
    def change(session: Session) -> tuple[Job, bool] | None:
        found = session.connection().execute(statement, params).one_or_none()
        if found is None:
            return None
        return job_of(found), found.subscribed

    return change


# What a start writes: the attempt's worker, number, clock and lease, and no progress left by an earlier attempt.
_STARTED = {
    "status": JobStatus.RUNNING,
    "worker": bindparam("b_worker"),
    "attempts": JOBS.c.attempts + 1,
    "started_at": bindparam("b_now"),
    "lease_expires_at": bindparam("b_lease"),
    "progress": None,
    "progress_message": None,
}
_STARTABLE = [JOBS.c.status == JobStatus.QUEUED, JOBS.c.cancel_requested.is_(False)]
# queued → running for a job no limit guards (claims.take without guards).
START = _prebuilt(_STARTABLE, **_STARTED)
# queued → running for the first waiting job of a queue (bound as b_queue) in taking order, where nothing could take
# another first (robotni/store/claims.py, its one-statement claim): one project waits, and the job has no concurrency
# key and a type without a rate (b_rated). A row another claim holds is passed over.
_WAITING = [JOBS.c.queue == bindparam("b_queue"), JOBS.c.status == JobStatus.QUEUED]
_FIRST = (
    select(JOBS.c.id)
    .where(*_WAITING, JOBS.c.cancel_requested.is_(False))
    .order_by(JOBS.c.priority, JOBS.c.created_at, JOBS.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_ONE_PROJECT = select(func.min(JOBS.c.project)).where(*_WAITING).scalar_subquery() == (
    select(func.max(JOBS.c.project)).where(*_WAITING).scalar_subquery()
)
_PLAIN = [JOBS.c.concurrency_key.is_(None), JOBS.c.type.not_in(bindparam("b_rated", expanding=True))]
START_FIRST = _prebuilt([*_STARTABLE, *_PLAIN, _ONE_PROJECT], row=_FIRST, **_STARTED)
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
    return apply(_run_prebuilt(START, params), now, {"status": JobStatus.RUNNING})


def start_first(queue: str, rated: list[str], worker: str, lease_seconds: float) -> Job | None:
    """queued → running for the queue's first waiting job in one statement (START_FIRST); None when it has none, or
    when its first job or the queue is one a limit or fair share may concern: the claim's reads decide then."""
    now = utcnow()
    params = {"b_queue": queue, "b_rated": rated, "b_worker": worker, "b_now": now}
    params["b_lease"] = now + timedelta(seconds=lease_seconds)
    return apply(_run_prebuilt(START_FIRST, params), now, {"status": JobStatus.RUNNING})


def end(job: Job, status: JobStatus, outcome: dict[str, Any]) -> Job | None:
    """running → status by the attempt that owns the row, with outcome (of OUTCOME's fields only)."""
    now = utcnow()
    params = {"b_id": job.id, "b_worker": job.worker, "b_attempts": job.attempts, "b_status": status, "b_now": now}
    params.update({f"b_{name}": outcome.get(name) for name in OUTCOME})
    changes = {"status": status, **outcome}
    return apply(_run_prebuilt(END, params), now, changes, ended=job, workflow=job.workflow_id)
