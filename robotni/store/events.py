"""The outbox: each status change of a job becomes an event row, with its webhook deliveries, in the transaction
that made the change; a crash after the commit loses nothing, and nothing is sent for a change that rolled back.
A schedule whose due time made no job (robotni/schedules/dispatch.py) is a `schedule.failed` event the same way.

Live streams (SSE) read the job events by id, so `Last-Event-ID` resumes where a dropped connection left off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, Table, insert, select
from sqlalchemy.orm import Session

from robotni.status import JobStatus, Priority
from robotni.store.engine import engine
from robotni.store.models import Event, Job, Schedule, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)
SCHEDULE_FAILED = "schedule.failed"
# What a subscription may ask for; job.queued and job.scheduled events exist for live streams only.
WEBHOOK_EVENTS = (
    "job.started", "job.completed", "job.failed", "job.cancelled", "job.timed_out", "job.retrying", SCHEDULE_FAILED,
)  # fmt: skip
# A job event's type starts so; the others (schedule.failed) are for webhooks only, never in a live stream.
JOB_EVENT_PREFIX = "job."
# The job as GET /jobs/{id} shows it (robotni/api/schemas.py JobSchema; tests/test_webhooks.py keeps them equal).
PUBLIC_FIELDS = (
    "id", "type", "project", "queue", "params", "venv", "status", "result", "error", "exit_code", "attempts",
    "max_attempts", "run_at", "worker", "cancel_requested", "progress", "progress_message", "log_bytes",
    "callback_url", "created_at", "started_at", "finished_at", "updated_at", "priority", "concurrency_key",
    "on_parent_failure", "parents_left", "workflow_id", "step",
)  # fmt: skip
# The schedule as GET /schedules/{id} shows it (robotni/api/schedule_schemas.py ScheduleSchema; tests keep them equal).
SCHEDULE_FIELDS = (
    "id", "name", "type", "project", "params", "workflow", "venv", "cron", "timezone", "interval_seconds", "enabled",
    "source", "source_file", "next_run_at", "last_run_at", "last_job_id", "last_error", "created_at", "updated_at",
)  # fmt: skip
PENDING = "pending"
ENABLED = WebhookSubscription.enabled.is_(True)
# Read with a job's change (robotni/store/transitions.py), in the same statement: is any subscription on?
SUBSCRIBED = select(WebhookSubscription.id).where(ENABLED).exists().label("subscribed")
_listeners: list[Callable[[list[int]], None]] = []
# On the table, run on the session's connection: an ORM insert costs more than SQLite took to run it.
ADD_EVENT = insert(cast(Table, Event.__table__))


def on_deliveries(listener: Callable[[list[int]], None]) -> None:
    """Call listener with the ids of new deliveries after their transaction commits (to send them at once)."""
    _listeners.append(listener)


def announce(delivery_ids: list[int]) -> None:
    if not delivery_ids:
        return
    for listener in _listeners:
        try:
            listener(delivery_ids)
        except Exception:  # the sweeper sends them a little later (robotni/webhooks/delivery.py)
            log.warning("deliveries %s: could not be sent now; the sweeper will", delivery_ids, exc_info=True)


def iso(moment: datetime) -> str:
    """Naive UTC from the store, as the API shows it (ISO 8601 with +00:00)."""
    return moment.replace(tzinfo=UTC).isoformat()


def _json(view: dict[str, Any]) -> dict[str, Any]:
    return {name: iso(value) if isinstance(value, datetime) else value for name, value in view.items()}


def snapshot(job: Job) -> dict[str, Any]:
    view = {name: getattr(job, name) for name in PUBLIC_FIELDS}
    view["job_id"] = job.id  # as the API shows it, for older clients
    view["status"] = job.status.value
    view["priority"] = Priority(job.priority).value
    view["waiting_for"] = None  # read with the job (robotni/store/waiting.py: live workers, limits), not a change
    return _json(view)


def schedule_snapshot(schedule: Schedule) -> dict[str, Any]:
    return _json({name: getattr(schedule, name) for name in SCHEDULE_FIELDS})


def event_type(status: JobStatus, ended_attempt: bool) -> str:
    """running → job.started; back to scheduled after an attempt → job.retrying; else job.<status>."""
    if status is JobStatus.RUNNING:
        return "job.started"
    if status is JobStatus.SCHEDULED and ended_attempt:
        return "job.retrying"
    return f"job.{status.value}"


def _subscriptions(session: Session) -> list[Any]:
    """(id, url, events, projects) of every enabled subscription."""
    query = select(
        WebhookSubscription.id, WebhookSubscription.url, WebhookSubscription.events, WebhookSubscription.projects
    )
    return list(session.execute(query.where(ENABLED)))


def _covering(subscriptions: list[Any], type_: str, project: str) -> list[tuple[str | None, str]]:
    """(subscription id, url) of those of subscriptions that ask for type_ and cover project."""
    return [
        (sid, url)
        for sid, url, events, projects in subscriptions
        if type_ in events and (not projects or project in projects)
    ]


def _add(
    session: Session, fields: dict[str, Any], data: dict[str, Any], targets: list[tuple[str | None, str]]
) -> list[int]:
    """The event (its columns: fields), with its payload and a delivery per target when it has any; the
    deliveries' ids."""
    if not targets:  # a statement, not a flush of the unit of work: nothing needs the event's id
        session.connection().execute(ADD_EVENT, fields)
        return []
    event = Event(**fields)
    event.payload = json.dumps({"type": event.type, "timestamp": iso(event.created_at), "data": data})
    session.add(event)
    session.flush()  # the event's id
    deliveries = [
        WebhookDelivery(
            event_id=event.id, job_id=event.job_id, subscription_id=sid, url=url, status=PENDING, attempts=0,
            next_try_at=event.created_at, created_at=event.created_at,
            published_at=event.created_at if _listeners else None,
        )
        for sid, url in targets
    ]  # fmt: skip
    session.add_all(deliveries)
    session.flush()
    return [d.id for d in deliveries]


def record(session: Session, job: Job, type_: str, now: datetime, subscribed: bool = True) -> list[int]:
    """Add the event and a delivery per matching subscription (and the job's callback); the deliveries' ids.

    subscribed=False: the caller read in this transaction that no subscription is on (SUBSCRIBED), so none is read.
    """
    return _record(session, job, type_, now, _subscriptions(session) if subscribed else [])


def record_all(session: Session, jobs: Sequence[Job], type_: str, now: datetime) -> list[int]:
    """record() for many jobs changed alike (a flush, a cascade): the subscriptions are read once, not per job."""
    if not jobs:
        return []
    subscriptions = _subscriptions(session)
    return [i for job in jobs for i in _record(session, job, type_, now, subscriptions)]


def _record(session: Session, job: Job, type_: str, now: datetime, subscriptions: list[Any]) -> list[int]:
    targets = _covering(subscriptions, type_, job.project)
    if job.callback_url and job.status.is_terminal:
        targets.append((None, job.callback_url))
    fields = {"job_id": job.id, "project": job.project, "type": type_, "status": job.status.value, "created_at": now}
    return _add(session, fields, snapshot(job) if targets else {}, targets)


def record_schedule_failure(session: Session, schedule: Schedule, now: datetime) -> list[int]:
    """A schedule.failed event (schedule as it now is, last_error saying why) for the subscriptions that ask for it.

    Written only when one does (no live stream reads it). Its job_id column holds the schedule's id: deliveries go
    in order per schedule as they do per job, and go with the schedule or with the retention.
    """
    targets = _covering(_subscriptions(session), SCHEDULE_FAILED, schedule.project)
    if not targets:
        return []
    fields = {"job_id": schedule.id, "project": schedule.project, "type": SCHEDULE_FAILED, "status": "failed"}
    return _add(session, {**fields, "created_at": now}, schedule_snapshot(schedule), targets)


def after(
    job_id: str | None, projects: list[str] | None, cursor: int, limit: int, upto: int | None = None
) -> list[Event]:
    """Events past cursor (and up to upto), oldest first: of one job, or the job events of some projects (None: all)."""
    query = select(Event).where(Event.id > cursor).order_by(Event.id).limit(limit)
    if upto is not None:
        query = query.where(Event.id <= upto)
    if job_id is not None:
        query = query.where(Event.job_id == job_id)
    else:
        query = query.where(Event.type.startswith(JOB_EVENT_PREFIX, autoescape=True))
    if projects is not None:
        query = query.where(Event.project.in_(projects))
    return _read(query)


def every_after(cursor: int, limit: int) -> list[Event]:
    """Every event past cursor, of any type, oldest first: the ids missing among them are the commits still to come
    (robotni/api/commit_order.py)."""
    return _read(select(Event).where(Event.id > cursor).order_by(Event.id).limit(limit))


def _read(query: Select[Event]) -> list[Event]:
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query))


def newest(count: int) -> list[tuple[int, datetime]]:
    """(id, created_at) of the events among the newest count ids, oldest first: where a stream from now starts
    (robotni/api/commit_order.py)."""
    with engine().connect() as conn:
        top = int(conn.execute(select(Event.id).order_by(Event.id.desc()).limit(1)).scalar() or 0)
        query = select(Event.id, Event.created_at).where(Event.id > top - count).order_by(Event.id)
        return [(event_id, created) for event_id, created in conn.execute(query)]


def last_of(job_id: str) -> int:
    """The id of a job's newest event (0: none)."""
    query = select(Event.id).where(Event.job_id == job_id).order_by(Event.id.desc()).limit(1)
    with engine().connect() as conn:
        return int(conn.execute(query).scalar() or 0)
