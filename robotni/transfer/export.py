"""Write a job store's rows as export lines: a header, the records, and an end line with their counts.

Every row is read in one snapshot (a single read transaction), so an export of a store in use is consistent:
a job and its attempts and output as they were at one moment. Jobs are read in pages and a job's output chunk
by chunk, so memory stays small whatever the store's size.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, RowMapping, select, tuple_
from sqlalchemy.orm import aliased

from robotni import __version__
from robotni.store import migrate
from robotni.store.models import (
    Attempt,
    Dependency,
    Job,
    LogChunk,
    Schedule,
    ScheduleRun,
    WebhookSubscription,
    Workflow,
)
from robotni.transfer.records import KINDS, encoded

FORMAT = "robotni-export"
# The format this code writes and the newest it reads. It goes up when a line changes in a way an older
# Robotni would misread; a column added with a default does not need it (an older file simply lacks it).
VERSION = 1
# Jobs read per query: their attempts come in one more query per page.
PAGE = 500


@dataclass(frozen=True)
class Scope:
    """What an export holds: a project's rows or all, jobs created since a time or all, with output or not."""

    project: str | None = None
    since: datetime | None = None  # naive UTC, as the store
    jobs: bool = True
    logs: bool = False

    def described(self) -> dict[str, Any]:
        since = None if self.since is None else self.since.isoformat()
        return {"project": self.project, "since": since, "jobs": self.jobs, "logs": self.logs}


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def lines(eng: Engine, scope: Scope) -> Iterator[str]:
    """The export, line by line; the end line's counts let an import tell a truncated file."""
    yield dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": datetime.now(UTC).isoformat(),
            "source": {"database": eng.dialect.name, "schema": migrate.current(eng), "robotni": __version__},
            "scope": scope.described(),
        }
    )
    counts: Counter[str] = Counter()
    with _snapshot(eng) as conn:
        for record in _records(conn, scope):
            counts[record["kind"]] += 1
            yield dumps(record)
    yield dumps({"kind": "end", "counts": {name: counts[name] for name in KINDS}})


@contextmanager
def _snapshot(eng: Engine) -> Iterator[Connection]:
    """A connection whose reads all see the store as it was at the first one."""
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # pysqlite starts no transaction for reads on its own
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
        try:
            yield conn
        finally:
            conn.rollback()


def _records(conn: Connection, scope: Scope) -> Iterator[dict[str, Any]]:
    schedules = _rows(conn, Schedule, [Schedule.project == scope.project] if scope.project else [], Schedule.name)
    yield from (encoded(KINDS["schedule"], row) for row in schedules)
    for row in _rows(conn, WebhookSubscription, [], WebhookSubscription.created_at, WebhookSubscription.id):
        if scope.project is None or scope.project in row["projects"]:  # an all-projects one is no project's
            yield encoded(KINDS["webhook"], row)
    if not scope.jobs:
        return
    workflows = _rows(conn, Workflow, _where(Workflow, scope), Workflow.created_at, Workflow.id)
    yield from (encoded(KINDS["workflow"], row) for row in workflows)
    yield from _jobs(conn, scope)
    yield from (encoded(KINDS["dependency"], row) for row in conn.execute(_edges(scope)).mappings())
    runs = select(ScheduleRun).where(ScheduleRun.schedule_id.in_([row["id"] for row in schedules]))
    if scope.since is not None:
        runs = runs.where(ScheduleRun.created_at >= scope.since)
    for row in conn.execute(runs.order_by(ScheduleRun.schedule_id, ScheduleRun.due_at)).mappings():
        yield encoded(KINDS["schedule_run"], row)


def _rows(conn: Connection, model: Any, where: Sequence[ColumnElement[bool]], *order: Any) -> list[RowMapping]:
    return list(conn.execute(select(model.__table__).where(*where).order_by(*order)).mappings())


def _where(model: Any, scope: Scope) -> list[ColumnElement[bool]]:
    where = []
    if scope.project is not None:
        where.append(model.project == scope.project)
    if scope.since is not None:
        where.append(model.created_at >= scope.since)
    return where


def _jobs(conn: Connection, scope: Scope) -> Iterator[dict[str, Any]]:
    """Each job in creation order, followed by its attempts and (with logs) its output."""
    table = KINDS["job"].table
    after: tuple[datetime, str] | None = None
    while True:
        query = select(table).where(*_where(Job, scope))
        if after is not None:
            query = query.where(tuple_(table.c.created_at, table.c.id) > tuple_(*after))
        page = list(conn.execute(query.order_by(table.c.created_at, table.c.id).limit(PAGE)).mappings())
        if not page:
            return
        ids = [job["id"] for job in page]
        by_job: dict[str, list[RowMapping]] = {}
        for attempt in conn.execute(select(Attempt.__table__).where(Attempt.job_id.in_(ids))).mappings():
            by_job.setdefault(attempt["job_id"], []).append(attempt)
        chunks = _chunks(conn, ids) if scope.logs else iter(())
        chunk = next(chunks, None)
        for job in page:
            yield encoded(KINDS["job"], job)
            attempts = sorted(by_job.get(job["id"], []), key=lambda attempt: attempt["number"])
            yield from (encoded(KINDS["attempt"], attempt) for attempt in attempts)
            while chunk is not None and chunk["job_id"] == job["id"]:
                yield encoded(KINDS["output"], chunk)
                chunk = next(chunks, None)
        after = (page[-1]["created_at"], page[-1]["id"])


def _chunks(conn: Connection, ids: list[str]) -> Iterator[RowMapping]:
    """The output of a page of jobs, in the page's order, one chunk in memory at a time (a log may be megabytes)."""
    query = (
        select(LogChunk.__table__)
        .join(Job, Job.id == LogChunk.job_id)
        .where(LogChunk.job_id.in_(ids))
        .order_by(Job.created_at, Job.id, LogChunk.start)
        .execution_options(stream_results=True, max_row_buffer=1)
    )
    yield from conn.execute(query).mappings()


def _edges(scope: Scope) -> Any:
    """The dependencies of the exported jobs, each with its child: with --since, a parent may be older than the
    export's jobs, and the store the file goes into must hold it (robotni/transfer/importer.py checks)."""
    child = aliased(Job)
    query = select(Dependency.__table__).join(child, child.id == Dependency.job_id).where(*_where(child, scope))
    return query.order_by(Dependency.job_id, Dependency.parent_id)
