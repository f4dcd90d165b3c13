"""Jobs that wait for other jobs: what a parent's end does to its dependents, in the transaction that ends it.

Every terminal transition of a job (robotni/store/jobs.py) calls `settle` inside its own transaction, so a
dependent is queued (or cancelled) in the same commit as its last parent's end: nothing polls, and a crash
leaves either both or neither. Each dependent counts its parents down (`parents_left`) with an UPDATE on its own
row, so two parents ending at once on two workers serialize on that row and the second sees the first's count.

A job's end looks for dependents only when its row says it has some (`has_dependents`): an ordinary job's end
costs no extra read. A submit with `depends_on` (`attach`) sets that mark on the parents and must not miss a
parent ending meanwhile. Its transaction inserts the job and its edges first, then marks the parents with an
UPDATE that returns their status:
- on SQLite the insert takes the database's write lock, so no parent can end until the submit commits, and the
  statuses it reads are final;
- on PostgreSQL the UPDATE locks each parent's row, and a parent's terminal transition is an UPDATE of that same
  row. If the parent's came first, the mark waits for its commit and returns the ended status (the parent's
  transaction did not see the uncommitted edge); if the mark came first, the parent's update waits for the
  submit's commit and returns the mark set, and its next statement (read committed) sees the new edge.
Either the submit applies the ended parent or the parent's end applies to the new job; never both, never neither.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from robotni.errors import UnknownParent
from robotni.status import JobStatus, ParentFailure
from robotni.store import events
from robotni.store.engine import engine
from robotni.store.models import Dependency, Job, utcnow

log = logging.getLogger(__name__)
# Parents looked up per statement: well under the bound-parameter limits of SQLite and PostgreSQL.
BATCH = 500

Publish = Callable[[Job], None]
_publisher: list[Publish] = []


class Ended(NamedTuple):
    id: str
    status: JobStatus


class Settled(NamedTuple):
    """What a settle changed: the jobs it queued (publish them after the commit), and the deliveries of the
    events it recorded for every dependent it queued or cancelled (announce them after the commit)."""

    released: list[Job]
    delivery_ids: list[int]


def publish_released_with(publish: Publish) -> None:
    """How this process sends the message of a job its transitions released (the API and the worker set it)."""
    _publisher[:] = [publish]


def publish(released: Iterable[Job]) -> None:
    """After the commit: each released job's message. A send that fails is resent by a reaper, as for a submit."""
    for job in released:
        for send in _publisher:
            try:
                send(job)
            except Exception:
                log.warning("job %s: released, its message not sent; a reaper resends it", job.id, exc_info=True)


def attach(session: Session, job: Job, parent_ids: Sequence[str]) -> None:
    """Edges from a job being inserted (already flushed) to its parents; the parents that ended apply at once.

    UnknownParent names the ids that are no job of the job's project. The job comes back waiting, or queued
    (the caller publishes it) or cancelled when its parents had ended; nothing waits on it yet.
    """
    session.add_all(Dependency(job_id=job.id, parent_id=parent) for parent in parent_ids)
    mark = (
        update(Job)
        .where(Job.id.in_(sorted(parent_ids)), Job.project == job.project)
        .values(has_dependents=True)  # not a change a client sees: no version bump
        .returning(Job.id, Job.status)
        .execution_options(synchronize_session=False)
    )
    found = {row.id: row.status for row in session.execute(mark)}
    unknown = [p for p in parent_ids if p not in found]
    if unknown:
        raise UnknownParent(unknown)
    ended = [Ended(parent, status) for parent, status in found.items() if status.is_terminal]
    rule = ParentFailure(job.on_parent_failure or ParentFailure.CANCEL)
    _apply(session, {job.id: (rule, ended)}, utcnow())
    session.refresh(job)


def settle(session: Session, ended: Sequence[Ended], now: datetime | None = None) -> Settled:
    """Apply jobs that just ended to their waiting dependents, and down the tree, each change with its event.

    Everything it changes carries one moment (`now`): a subtree cancelled by one failure ends at one time.
    """
    now = now or utcnow()
    released: list[Job] = []
    delivery_ids: list[int] = []
    frontier = list(ended)
    while frontier:
        cancelled: list[Job] = []
        for start in range(0, len(frontier), BATCH):
            batch = {e.id: e for e in frontier[start : start + BATCH]}
            down, up = _apply(session, _waiting_dependents(session, batch), now)
            cancelled += down
            released += up
        delivery_ids += events.record_all(session, cancelled, "job.cancelled", now)
        frontier = [Ended(job.id, JobStatus.CANCELLED) for job in cancelled if job.has_dependents]
    delivery_ids += events.record_all(session, released, "job.queued", now)
    return Settled(released, delivery_ids)


def _waiting_dependents(session: Session, parents: dict[str, Ended]) -> dict[str, tuple[ParentFailure, list[Ended]]]:
    """Each waiting dependent of these parents, locked (in id order), with its rule and which of them it has."""
    query = (
        select(Dependency.job_id, Dependency.parent_id, Job.on_parent_failure)
        .join(Job, Job.id == Dependency.job_id)
        .where(Dependency.parent_id.in_(list(parents)), Job.status == JobStatus.WAITING)
        .order_by(Job.id)
        .with_for_update(of=Job)
    )
    found: dict[str, tuple[ParentFailure, list[Ended]]] = {}
    for job_id, parent_id, rule in session.execute(query):
        found.setdefault(job_id, (ParentFailure(rule or ParentFailure.CANCEL), []))[1].append(parents[parent_id])
    return found


def _apply(
    session: Session, dependents: dict[str, tuple[ParentFailure, list[Ended]]], now: datetime
) -> tuple[list[Job], list[Job]]:
    """Cancel the dependents a failed parent cancels, count the others down; (cancelled, released)."""
    to_cancel: dict[Ended, list[str]] = defaultdict(list)
    to_count: dict[int, list[str]] = defaultdict(list)
    for job_id, (rule, parents) in dependents.items():
        failed = [p for p in parents if p.status != JobStatus.COMPLETED]
        if failed and rule is ParentFailure.CANCEL:
            to_cancel[min(failed)].append(job_id)
        elif parents:
            to_count[len(parents)].append(job_id)
    cancelled = [ended for parent, ids in to_cancel.items() for ended in _cancel(session, ids, parent, now)]
    counted = [row for n, ids in to_count.items() for row in _count_down(session, ids, n, now)]
    released = [row for row in counted if row.status == JobStatus.QUEUED]
    return cancelled, released


def _cancel(session: Session, job_ids: list[str], parent: Ended, now: datetime) -> list[Job]:
    """The jobs cancelled; those that have dependents are the next round of `settle`."""
    statement = (
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.WAITING)
        .values(
            status=JobStatus.CANCELLED,
            error=f"parent {parent.id} ended {parent.status}",
            finished_at=now,
            updated_at=now,
            version=Job.version + 1,
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(statement).scalars())


def _count_down(session: Session, job_ids: list[str], parents: int, now: datetime) -> list[Job]:
    """Each job has `parents` fewer to wait for; those with none left are queued, their message counted as sent.

    published_at is now, as at a submit: the caller publishes after the commit, and if it dies first a reaper
    resends the message of a queued job whose message is older than ROBOTNI_REPUBLISH_AFTER.
    """
    last = Job.parents_left <= parents
    statement = (
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.WAITING)
        .values(
            parents_left=Job.parents_left - parents,
            status=case((last, JobStatus.QUEUED.value), else_=Job.status),
            published_at=case((last, now), else_=Job.published_at),
            updated_at=now,
            version=Job.version + 1,
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(statement).scalars())


def parents_of(job_id: str) -> list[Job]:
    query = select(Job).join(Dependency, Dependency.parent_id == Job.id).where(Dependency.job_id == job_id)
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query.order_by(Job.id)))
