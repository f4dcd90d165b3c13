"""Read-only questions about jobs: listing, counting, a job's attempts and its stored output."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from robotni.status import JobStatus, Priority
from robotni.store.engine import engine
from robotni.store.models import Attempt, Job, LogChunk

K = TypeVar("K")


def search(
    *,
    types: list[str] | None = None,
    statuses: list[str] | None = None,
    projects: list[str] | None = None,
    priorities: list[str] | None = None,
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
    if priorities:
        query = query.where(Job.priority.in_([Priority(p) for p in priorities]))
    if created_after:
        query = query.where(Job.created_at >= created_after)
    if created_before:
        query = query.where(Job.created_at < created_before)
    if after:
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(*after))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query))


def counts(column: InstrumentedAttribute[K], where: Iterable[ColumnElement[bool]] = ()) -> dict[K, int]:
    """Jobs per value of column (status, queue, ...), among rows matching where."""
    query = select(column, func.count()).where(*where).group_by(column)
    with engine().connect() as conn:
        return dict(conn.execute(query).all())


def running_on(worker: str) -> list[str]:
    with engine().connect() as conn:
        rows = conn.execute(select(Job.id).where(Job.worker == worker, Job.status == JobStatus.RUNNING))
        return [r[0] for r in rows]


def attempts_of(job_id: str) -> list[Attempt]:
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number)))


def output_of(job_id: str, offset: int, limit: int) -> bytes:
    """Up to limit bytes of the job's shipped output from offset (fewer at its end)."""
    first = select(func.max(LogChunk.start)).where(LogChunk.job_id == job_id, LogChunk.start <= offset)
    query = (
        select(LogChunk.start, LogChunk.data)
        .where(LogChunk.job_id == job_id, LogChunk.start >= func.coalesce(first.scalar_subquery(), 0))
        .where(LogChunk.start < offset + limit)
        .order_by(LogChunk.start)
    )
    with engine().connect() as conn:
        chunks = conn.execute(query).all()
    if not chunks:
        return b""
    skip = offset - chunks[0].start  # chunks begin at 0, so the first one starts at or before offset
    return b"".join(data for _, data in chunks)[skip : skip + limit]


def versions(job_ids: Collection[str]) -> dict[str, int]:
    """The version of each of the jobs that still exists: one read by key for many jobs (robotni/api/feeds.py)."""
    with engine().connect() as conn:
        return {
            job_id: version for job_id, version in conn.execute(select(Job.id, Job.version).where(Job.id.in_(job_ids)))
        }


def by_ids(job_ids: Collection[str]) -> list[Job]:
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(select(Job).where(Job.id.in_(job_ids))))
