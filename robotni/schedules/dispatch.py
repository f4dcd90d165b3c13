"""Schedules: when each is due (pure functions of the current time) and the dispatch that makes their jobs.

Every function that decides something takes `now` (naive UTC) as an argument, so tests drive the clock.
Dispatch is safe with two beats running by mistake: moving `next_run_at` on is a compare-and-set, and the
(schedule, due time) row is unique, both in the transaction that inserts the job.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from robotni.config import settings
from robotni.errors import InvalidParams, RobotniError, UnknownType
from robotni.status import JobStatus
from robotni.store import creation, events, workflows
from robotni.store.engine import engine
from robotni.store.models import Event, Job, Schedule, ScheduleRun, WebhookDelivery
from robotni.submission import check, workflow
from robotni.submission.check import RefusedRequest
from robotni.worktypes.registry import WorkerType, registry

log = logging.getLogger(__name__)
# Schedules handled per dispatch pass; the next tick (a second later) takes the rest.
BATCH = 100
# Fields that change when a schedule is due: editing one of them computes its next run again.
TIMING_FIELDS = ("cron", "timezone", "interval_seconds")
# `source` of a schedule declared in the schedules file (robotni/schedules/file.py); the others say "api".
FILE_SOURCE = "file"
# A failure's last_error names its due time: two failures are the same one when the rest of their text is.
DUE_TIME = re.compile(r"^(no job for|no next run after) \S+: ")

Publish = Callable[[Job], None]


class InvalidSchedule(RobotniError):
    """A schedule's cron expression, timezone or interval is not usable; `field` names which."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "../etc" is a ValueError, "America" a folder
        raise InvalidSchedule("timezone", f"unknown timezone {name!r}") from None


@dataclass(frozen=True)
class Timing:
    """When a schedule is due: a 5-field cron expression read in `timezone`, or every `interval` seconds."""

    cron: str | None = None
    timezone: str = "UTC"
    interval: int | None = None

    def check(self, now: datetime) -> None:
        """Raise InvalidSchedule unless exactly one of cron and interval is given and it will fire."""
        if (self.cron is None) == (self.interval is None):
            raise InvalidSchedule("cron", "give either cron or interval_seconds, not both or neither")
        zone(self.timezone)
        if self.interval is not None:
            if self.interval < 1:
                raise InvalidSchedule("interval_seconds", "must be at least 1")
            return
        assert self.cron is not None  # exactly one of cron and interval, as tested above
        # croniter also takes 6 and 7 fields (seconds, years) and @aliases; the API promises plain cron.
        if len(self.cron.split()) != 5 or not croniter.is_valid(self.cron):
            raise InvalidSchedule("cron", f"not a 5-field cron expression: {self.cron!r}")
        try:
            self.first(now)
        except Exception:  # croniter's own errors, e.g. "0 0 30 2 *" (February 30th) never comes
            raise InvalidSchedule("cron", f"{self.cron!r} never fires") from None

    def first(self, now: datetime) -> datetime:
        """The first due time after now (a new or re-enabled schedule)."""
        if self.interval is not None:
            return now + timedelta(seconds=self.interval)
        assert self.cron is not None  # a checked timing has a cron expression when it has no interval
        local = _aware(now).astimezone(zone(self.timezone))
        return _naive(croniter(self.cron, local).get_next(datetime))

    def following(self, due: datetime, now: datetime) -> datetime:
        """The due time after `due` once it ran at `now`: the first slot after now, so missed slots are skipped.

        An interval keeps its phase (due + k * interval); after downtime a schedule runs once, not per slot.
        """
        if self.interval is None:
            following = self.first(max(due, now))
            if self._wall_clock(following) == self._wall_clock(due):  # 02:30 again as the clocks go back
                following = self.first(following)
            return following
        step = timedelta(seconds=self.interval)
        missed = max(0, (now - due) // step)
        return due + (missed + 1) * step

    def _wall_clock(self, moment: datetime) -> datetime:
        return _aware(moment).astimezone(zone(self.timezone)).replace(tzinfo=None)


def timing_of(schedule: Schedule) -> Timing:
    return Timing(schedule.cron, schedule.timezone, schedule.interval_seconds)


# --- the store ---------------------------------------------------------------------------------------------


def get(schedule_id: str) -> Schedule | None:
    with Session(engine(), expire_on_commit=False) as session:
        return session.get(Schedule, schedule_id)


def by_name(name: str) -> Schedule | None:
    with Session(engine(), expire_on_commit=False) as session:
        return session.scalars(select(Schedule).where(Schedule.name == name)).one_or_none()


def listing(projects: list[str] | None = None) -> list[Schedule]:
    query = select(Schedule).order_by(Schedule.name)
    if projects:
        query = query.where(Schedule.project.in_(projects))
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query))


def create(values: dict[str, Any], now: datetime) -> Schedule:
    """Insert a schedule (values already checked); IntegrityError when its name is taken."""
    schedule = Schedule(id=str(uuid.uuid4()), created_at=now, updated_at=now, **values)
    schedule.next_run_at = timing_of(schedule).first(now) if schedule.enabled else None
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        session.add(schedule)
    return schedule


def change(schedule: Schedule, values: dict[str, Any], now: datetime) -> Schedule | None:
    """Apply checked values; a new timing or enabling counts from now. None when the schedule is gone."""
    merged = {**values_of(schedule), **values}
    timing = Timing(merged["cron"], merged["timezone"], merged["interval_seconds"])
    retimed = any(merged[name] != getattr(schedule, name) for name in TIMING_FIELDS)
    if not merged["enabled"]:
        values["next_run_at"] = None
    elif retimed or not schedule.enabled:
        values["next_run_at"] = timing.first(now)
    statement = update(Schedule).where(Schedule.id == schedule.id).values(updated_at=now, **values)
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        return session.execute(statement.returning(Schedule)).scalar_one_or_none()


def values_of(schedule: Schedule) -> dict[str, Any]:
    return {column.key: getattr(schedule, column.key) for column in Schedule.__table__.columns}


def remove(schedule_id: str) -> bool:
    """Delete a schedule, its run records and its schedule.failed events; the jobs it made stay (cleanup removes
    them in time)."""
    with engine().begin() as conn:
        conn.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == schedule_id))
        conn.execute(delete(WebhookDelivery).where(WebhookDelivery.job_id == schedule_id))
        conn.execute(delete(Event).where(Event.job_id == schedule_id))
        return conn.execute(delete(Schedule).where(Schedule.id == schedule_id)).rowcount == 1


def runs(schedule_id: str, limit: int) -> list[tuple[ScheduleRun, Job | None]]:
    """The schedule's runs, newest due time first, each with its job."""
    query = (
        select(ScheduleRun, Job)
        .outerjoin(Job, Job.id == ScheduleRun.job_id)
        .where(ScheduleRun.schedule_id == schedule_id)
        .order_by(ScheduleRun.due_at.desc())
        .limit(limit)
    )
    with Session(engine(), expire_on_commit=False) as session:
        return [(run, job) for run, job in session.execute(query)]


# --- dispatch ----------------------------------------------------------------------------------------------


def due(now: datetime, limit: int = BATCH) -> list[Schedule]:
    query = (
        select(Schedule)
        .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at)
        .limit(limit)
    )
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query))


def dispatch(now: datetime, publish: Publish, types: Mapping[str, WorkerType] | None = None) -> list[Job]:
    """Make one job for each schedule due by now and publish it; the jobs this call made."""
    types = registry() if types is None else types
    made = []
    for schedule in due(now):
        try:
            queued = fire(schedule, now, types)
        except Exception:  # one broken schedule must not hold up the others; it is tried again next tick
            log.exception("schedule %s: dispatch failed", schedule.name)
            continue
        for job in queued or ():
            made.append(job)
            try:
                publish(job)
            except Exception:  # the row stays queued with its publish time: a worker's reaper sends it again
                log.exception("schedule %s: job %s made, but publishing failed", schedule.name, job.id)
    return made


def rows_for(schedule: Schedule, types: Mapping[str, WorkerType], now: datetime) -> tuple[list[Any], list[Job]]:
    """The rows the schedule inserts and the jobs among them to publish: its job, or its workflow's first steps.

    Raises UnknownType (or KeyError), InvalidParams or RefusedRequest when a type or its params changed.
    """
    if schedule.workflow is not None:
        steps = workflow.checked(types, schedule.project, schedule.workflow["steps"], settings())
        made = workflows.make(schedule.project, schedule.workflow["name"], steps, now)
        return made.rows, [job for job in made.jobs if job.status == JobStatus.QUEUED]
    job = _job_for(schedule, types, now)
    return [job], [job]


def _job_for(schedule: Schedule, types: Mapping[str, WorkerType], now: datetime) -> Job:
    """The job the schedule makes; raises UnknownType (or KeyError) or InvalidParams when its type changed."""
    wtype = types[schedule.type or ""]
    params = wtype.validate(schedule.params)
    return creation.new_job(
        now,
        type=wtype.name,
        project=schedule.project,
        queue=wtype.queue,
        params=params,
        venv=schedule.venv,
        max_attempts=wtype.retry.max_attempts,
        placement=check.placement(wtype, schedule.project, params, None),
    )


def _new_failure(before: str | None, error: str) -> bool:
    """Whether a failed due time is news for the webhooks: the schedule worked before (a success clears
    last_error), or it fails another way now. One failing every 30 s the same way would otherwise send an event
    every 30 s; `last_error` still says each time why."""
    return not before or DUE_TIME.sub(r"\1: ", before) != DUE_TIME.sub(r"\1: ", error)


def fire(schedule: Schedule, now: datetime, types: Mapping[str, WorkerType]) -> list[Job] | None:
    """The jobs to publish for the schedule's due time, or None when another dispatch (or an edit) got there first.

    A schedule whose type or params no longer hold makes no job; it moves on and says why in last_error, and a
    schedule.failed event tells the webhooks that ask for it, in the same transaction, when the failure is new
    (`_new_failure`). Its run (and last_job_id) names the job it made, or its workflow's first step, whose
    workflow_id names the workflow.
    """
    due_at = schedule.next_run_at
    assert due_at is not None  # only a schedule with a due time fires (due())
    rows: list[Any] = []
    queued: list[Job] = []
    try:
        (rows, queued), error = rows_for(schedule, types, now), None
    except (UnknownType, KeyError, InvalidParams, RefusedRequest) as exc:
        error = f"no job for {due_at.isoformat()}: {exc}"
        log.warning("schedule %s: %s", schedule.name, error)
    job = next((row for row in rows if isinstance(row, Job)), None)
    try:
        following = timing_of(schedule).following(due_at, now)
    except InvalidSchedule as exc:  # its timezone left tzdata in an upgrade: it stops until its timing is edited
        following, error = None, f"no next run after {due_at.isoformat()}: {exc}"
        log.warning("schedule %s: %s", schedule.name, error)
    moved = (
        update(Schedule)
        .where(Schedule.id == schedule.id, Schedule.enabled.is_(True), Schedule.next_run_at == due_at)
        .values(
            next_run_at=following,
            last_run_at=now,
            last_job_id=job.id if job else schedule.last_job_id,
            last_error=error,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    try:
        with Session(engine(), expire_on_commit=False) as session, session.begin():
            # The update comes first: on SQLite it takes the write lock before anything is read.
            updated = session.execute(moved.returning(Schedule)).scalar_one_or_none()
            if updated is None:
                return None
            if job is not None:
                session.add(ScheduleRun(schedule_id=schedule.id, due_at=due_at, job_id=job.id, created_at=now))
                session.add_all(rows)
            failed = (
                events.record_schedule_failure(session, updated, now)
                if error is not None and _new_failure(schedule.last_error, error)
                else []
            )
    except IntegrityError:
        return None  # this due time already has its job
    events.announce(failed)
    return queued
