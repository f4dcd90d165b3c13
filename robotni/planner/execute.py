"""Making a plan's schedules: created, updated or left as they are (found by name), each run once now if asked.

Every schedule was checked when the plan was made (robotni/planner/plan.py); names are checked here before the first
write, so a plan whose name belongs to another project or to the schedules file changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from robotni.errors import RobotniError
from robotni.planner.plan import Plan, Planned
from robotni.schedules import dispatch, now
from robotni.schedules.declaration import ScheduleCreateSchema
from robotni.schedules.dispatch import TIMING_FIELDS, Timing
from robotni.store.models import Job, Schedule
from robotni.worktypes.registry import WorkerType

log = logging.getLogger(__name__)
CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
WOULD_CREATE, WOULD_UPDATE = "would_create", "would_update"


class NameTaken(RobotniError):
    """A planned schedule's name is a schedule the plan may not change: another project's, or the file's."""


@dataclass
class Outcome:
    action: str
    schedule: Schedule | dict[str, Any]  # as stored, or as it would be (a dry run)
    job_id: str | None = None


def _values(planned: Planned) -> dict[str, Any]:
    """The schedule as POST /schedules would store it (defaults filled in: enabled, no venv, no workflow)."""
    values: dict[str, Any] = ScheduleCreateSchema().load(planned.values())
    return values


def check_names(plan: Plan) -> None:
    for planned in plan.schedules:
        existing = dispatch.by_name(planned.name)
        if existing is None:
            continue
        if existing.source == dispatch.FILE_SOURCE:
            raise NameTaken(f"schedule {planned.name!r} is declared in {existing.source_file}; change it there")
        if existing.project != planned.project:
            raise NameTaken(f"a schedule named {planned.name!r} exists in another project")


def execute(
    plan: Plan,
    dry_run: bool,
    run_immediately: bool,
    at: datetime,
    publish: Callable[[Job], None],
    types: Mapping[str, WorkerType] | None = None,
) -> list[Outcome]:
    """What happened to each planned schedule (or would, on a dry run); NameTaken before any write."""
    check_names(plan)
    outcomes = [_apply(_values(planned), dry_run, at) for planned in plan.schedules]
    if run_immediately and not dry_run:
        for outcome in outcomes:
            assert isinstance(outcome.schedule, Schedule)  # stored: not a dry run
            outcome.job_id = _run(outcome.schedule, at, publish, types)
    return outcomes


def _apply(values: dict[str, Any], dry_run: bool, at: datetime) -> Outcome:
    existing = dispatch.by_name(values["name"])
    if existing is None:
        if dry_run:
            return Outcome(WOULD_CREATE, {**values, "next_run_at": _timing(values).first(at)})
        try:
            return Outcome(CREATED, dispatch.create(values, at))
        except IntegrityError:  # made by another request since check_names
            raise NameTaken(f"a schedule named {values['name']!r} was made meanwhile") from None
    changed = {key: value for key, value in values.items() if getattr(existing, key) != value}
    if not changed:
        return Outcome(UNCHANGED, existing)
    if dry_run:
        retimed = any(key in changed for key in TIMING_FIELDS) or not existing.enabled
        following = _timing(values).first(at) if retimed else existing.next_run_at
        return Outcome(WOULD_UPDATE, {**dispatch.values_of(existing), **values, "next_run_at": following})
    return Outcome(UPDATED, dispatch.change(existing, changed, at) or existing)


def _timing(values: dict[str, Any]) -> Timing:
    return Timing(values["cron"], values["timezone"], values["interval_seconds"])


def _run(
    schedule: Schedule, at: datetime, publish: Callable[[Job], None], types: Mapping[str, WorkerType] | None
) -> str | None:
    """Run the schedule once now; its job's id. A failed publish leaves the job queued for a reaper to send."""
    job, queued = now.run_once(schedule, at, types)
    for one in queued:
        try:
            publish(one)
        except Exception:  # as in dispatch: the row stays queued with its publish time, and a reaper sends it
            log.exception("schedule %s: job %s made, but publishing failed", schedule.name, one.id)
    return None if job is None else job.id
