"""Workflows: steps (jobs) and their edges inserted together, their status read from the steps, their cancel."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case, exists, func, select, tuple_, update
from sqlalchemy.orm import Session

from robotni.status import NOT_ENDED, WAITING, JobStatus, ParentFailure, WorkflowStatus
from robotni.store import dependencies, events
from robotni.store.creation import Placement, new_job
from robotni.store.dependencies import Ended
from robotni.store.engine import engine
from robotni.store.jobs import in_id_order, status_in
from robotni.store.models import Dependency, Job, Workflow, utcnow
from robotni.store.transitions import workflow_lock


@dataclass(frozen=True)
class NewStep:
    name: str
    type: str
    queue: str
    params: dict[str, Any]
    venv: str | None
    max_attempts: int
    depends_on: list[str] = field(default_factory=list)  # names of other steps
    on_parent_failure: ParentFailure = ParentFailure.CANCEL
    placement: Placement = field(default_factory=Placement)


@dataclass
class Found:
    """A workflow as a client sees it: the row, its status and end read from its steps."""

    workflow: Workflow
    status: WorkflowStatus
    finished_at: datetime | None


def _steps_where(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(Job.workflow_id == Workflow.id, *where)


# running while a step has not ended; then cancelled if a cancel came meanwhile, failed if a step did not complete.
STATUS = case(
    (_steps_where(status_in(NOT_ENDED)), WorkflowStatus.RUNNING.value),
    (Workflow.cancel_requested, WorkflowStatus.CANCELLED.value),
    (_steps_where(Job.status != JobStatus.COMPLETED), WorkflowStatus.FAILED.value),
    else_=WorkflowStatus.COMPLETED.value,
)
FINISHED_AT = select(func.max(Job.finished_at)).where(Job.workflow_id == Workflow.id).scalar_subquery()


@dataclass
class Made:
    """A workflow's rows, unsaved: the workflow, its steps (those without parents queued) and its edges."""

    workflow: Workflow
    jobs: list[Job]
    edges: list[Dependency]

    @property
    def rows(self) -> list[Any]:
        return [self.workflow, *self.jobs, *self.edges]


def make(project: str, name: str, steps: Sequence[NewStep], now: datetime) -> Made:
    """A new workflow's rows, unsaved: `create` inserts them, a schedule inserts them with its run."""
    workflow = Workflow(id=str(uuid.uuid4()), project=project, name=name, cancel_requested=False, created_at=now)
    rows: dict[str, Job] = {}
    for step in steps:
        job = new_job(
            now,
            type=step.type,
            project=project,
            queue=step.queue,
            params=step.params,
            venv=step.venv,
            max_attempts=step.max_attempts,
            parents=len(step.depends_on),
            on_parent_failure=step.on_parent_failure if step.depends_on else None,
            placement=step.placement,
        )
        job.workflow_id, job.step = workflow.id, step.name
        rows[step.name] = job
    edges = [Dependency(job_id=rows[s.name].id, parent_id=rows[p].id) for s in steps for p in s.depends_on]
    for parent in {p for s in steps for p in s.depends_on}:
        rows[parent].has_dependents = True
    return Made(workflow, list(rows.values()), edges)


def create(project: str, name: str, steps: Sequence[NewStep]) -> tuple[Found, list[Job]]:
    """Insert the workflow, its steps and edges in one transaction; the steps without parents are queued."""
    made = make(project, name, steps, utcnow())
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        session.add_all(made.rows)
    return Found(made.workflow, WorkflowStatus.RUNNING, None), made.jobs


def _query() -> Any:
    return select(Workflow, STATUS.label("status"), FINISHED_AT.label("finished_at"))


def _found(row: Row[Any]) -> Found:
    return Found(row[0], WorkflowStatus(row.status), row.finished_at)


def get(workflow_id: str) -> Found | None:
    with Session(engine(), expire_on_commit=False) as session:
        row = session.execute(_query().where(Workflow.id == workflow_id)).one_or_none()
        return None if row is None else _found(row)


def search(
    *,
    projects: list[str] | None = None,
    statuses: list[str] | None = None,
    names: list[str] | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Found]:
    """Newest first; `after` is the (created_at, id) of the last workflow already seen (keyset paging)."""
    query = _query()
    if projects:
        query = query.where(Workflow.project.in_(projects))
    if names:
        query = query.where(Workflow.name.in_(names))
    if statuses:
        query = query.where(STATUS.in_(statuses))
    if after:
        query = query.where(tuple_(Workflow.created_at, Workflow.id) < tuple_(*after))
    query = query.order_by(Workflow.created_at.desc(), Workflow.id.desc()).limit(limit)
    with Session(engine(), expire_on_commit=False) as session:
        return [_found(row) for row in session.execute(query)]


def steps(workflow_id: str) -> tuple[list[Job], list[tuple[str, str]]]:
    """The workflow's jobs and its edges as (step, parent step) names."""
    parent = select(Job.id.label("id"), Job.step.label("step")).where(Job.workflow_id == workflow_id).subquery()
    edges = (
        select(Job.step, parent.c.step)
        .join(Dependency, Dependency.job_id == Job.id)
        .join(parent, parent.c.id == Dependency.parent_id)
        .where(Job.workflow_id == workflow_id)
    )
    with Session(engine(), expire_on_commit=False) as session:
        jobs = list(session.scalars(select(Job).where(Job.workflow_id == workflow_id)))
        return jobs, [(child, of) for child, of in session.execute(edges) if child and of]


def cancel(workflow_id: str) -> list[str] | None:
    """Cancel every step not ended; the running ones to stop (their rows are marked). None: nothing left to cancel.

    On PostgreSQL the workflow's lock is taken first, exclusive: every change of a step's status but a claim's and a
    release's takes it shared (robotni/store/jobs.py), so no step ends meanwhile (and none can hold its own row
    while it waits for a dependent this holds). The steps not started are cancelled first, then the running ones
    are marked: a step claimed meanwhile is running by then and marked too. Each group is locked in id order.
    """
    now = utcnow()
    unfinished = _steps_where(status_in(NOT_ENDED))
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(workflow_lock(workflow_id))))
        flag = update(Workflow).where(Workflow.id == workflow_id, unfinished).values(cancel_requested=True)
        if session.execute(flag.returning(Workflow.id).execution_options(synchronize_session=False)).first() is None:
            return None
        waiting = [Job.workflow_id == workflow_id, status_in(WAITING)]
        values = {"status": JobStatus.CANCELLED, "cancel_requested": True, "finished_at": now, "run_at": None}
        values["error"] = "cancelled with its workflow"
        statement = _visible(update(Job).where(in_id_order(*waiting), *waiting), now, **values)
        cancelled = list(session.execute(statement.returning(Job)).scalars())
        running = [Job.workflow_id == workflow_id, Job.status == JobStatus.RUNNING, Job.cancel_requested.is_(False)]
        mark = _visible(update(Job).where(in_id_order(*running), *running), now, cancel_requested=True)
        marked = session.execute(mark.returning(Job.id)).scalars().all()
        delivery_ids = events.record_all(session, cancelled, "job.cancelled", now)
        ended = [Ended(job.id, JobStatus.CANCELLED) for job in cancelled if job.has_dependents]
        settled = dependencies.settle(session, ended, now)  # jobs outside the workflow may wait on its steps
    events.announce(delivery_ids + settled.delivery_ids)
    dependencies.publish(settled.released)
    return list(marked)


def _visible(statement: Any, now: datetime, **values: Any) -> Any:
    """A change a client sees: the version and updated_at move with it."""
    return statement.values(version=Job.version + 1, updated_at=now, **values).execution_options(
        synchronize_session=False
    )
