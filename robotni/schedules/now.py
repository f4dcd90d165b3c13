"""A schedule run once now, outside its timing (the planner's `run_immediately`): the job, or the workflow, its due
time would make, recorded as one of its runs. Its next due time stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from robotni.schedules import dispatch
from robotni.store.engine import engine
from robotni.store.models import Job, Schedule, ScheduleRun
from robotni.worktypes.registry import WorkerType, registry


def run_once(
    schedule: Schedule, now: datetime, types: Mapping[str, WorkerType] | None = None
) -> tuple[Job | None, list[Job]]:
    """The run's job (a workflow's first step) and the jobs to publish; (None, []) when the schedule is gone.

    Raises as a due time would (UnknownType or KeyError, InvalidParams, RefusedRequest) when its type changed.
    """
    rows, queued = dispatch.rows_for(schedule, registry() if types is None else types, now)
    job = next(row for row in rows if isinstance(row, Job))
    recorded = (
        update(Schedule).where(Schedule.id == schedule.id).values(last_run_at=now, last_job_id=job.id, updated_at=now)
    )
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        # The update comes first: on SQLite it takes the write lock before anything is read (as dispatch.fire).
        if cast(CursorResult[Any], session.execute(recorded)).rowcount != 1:
            return None, []
        session.add(ScheduleRun(schedule_id=schedule.id, due_at=now, job_id=job.id, created_at=now))
        session.add_all(rows)
    return job, queued
