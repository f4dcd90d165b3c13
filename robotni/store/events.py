"""The outbox: each status change of a job becomes an event row, with its webhook deliveries, in the transaction
that made the change; a crash after the commit loses nothing, and nothing is sent for a change that rolled back.

Live streams (SSE) read the same rows by id, so `Last-Event-ID` resumes where a dropped connection left off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from robotni.status import JobStatus, Priority
from robotni.store.engine import engine
from robotni.store.models import Event, Job, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)
# What a subscription may ask for; job.queued and job.scheduled events exist for live streams only.
WEBHOOK_EVENTS = ("job.started", "job.completed", "job.failed", "job.cancelled", "job.timed_out", "job.retrying")
# The job as GET /jobs/{id} shows it (robotni/api/schemas.py JobSchema; tests/test_webhooks.py keeps them equal).
PUBLIC_FIELDS = (
    "id", "type", "project", "queue", "params", "venv", "status", "result", "error", "exit_code", "attempts",
    "max_attempts", "run_at", "worker", "cancel_requested", "progress", "progress_message", "log_bytes",
    "callback_url", "created_at", "started_at", "finished_at", "updated_at", "priority", "concurrency_key",
    "on_parent_failure", "parents_left", "workflow_id", "step",
)  # fmt: skip
PENDING = "pending"
ENABLED = WebhookSubscription.enabled.is_(True)
# Read with a job's change (robotni/store/jobs.py), in the same statement: is any subscription on?
SUBSCRIBED = select(WebhookSubscription.id).where(ENABLED).exists().label("subscribed")
_listeners: list[Callable[[list[int]], None]] = []


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


def snapshot(job: Job) -> dict[str, Any]:
    view = {name: getattr(job, name) for name in PUBLIC_FIELDS}
    view["job_id"] = job.id  # as the API shows it, for older clients
    view["status"] = job.status.value
    view["priority"] = Priority(job.priority).value
    view["waiting_for"] = None  # read with the job (robotni/store/waiting.py: live workers, limits), not a change
    return {name: iso(value) if isinstance(value, datetime) else value for name, value in view.items()}


def event_type(status: JobStatus, ended_attempt: bool) -> str:
    """running → job.started; back to scheduled after an attempt → job.retrying; else job.<status>."""
    if status is JobStatus.RUNNING:
        return "job.started"
    if status is JobStatus.SCHEDULED and ended_attempt:
        return "job.retrying"
    return f"job.{status.value}"


def record(session: Session, job: Job, type_: str, now: datetime, subscribed: bool = True) -> list[int]:
    """Add the event and a delivery per matching subscription (and the job's callback); the deliveries' ids.

    subscribed=False: the caller read in this transaction that no subscription is on (SUBSCRIBED), so none is read.
    """
    query = select(
        WebhookSubscription.id, WebhookSubscription.url, WebhookSubscription.events, WebhookSubscription.projects
    )
    targets: list[tuple[str | None, str]] = [
        (sid, url)
        for sid, url, events, projects in (session.execute(query.where(ENABLED)) if subscribed else [])
        if type_ in events and (not projects or job.project in projects)
    ]
    if job.callback_url and job.status.is_terminal:
        targets.append((None, job.callback_url))
    event = Event(job_id=job.id, project=job.project, type=type_, status=job.status.value, created_at=now)
    if targets:
        event.payload = json.dumps({"type": type_, "timestamp": iso(now), "data": snapshot(job)})
    session.add(event)
    if not targets:
        return []
    session.flush()  # the event's id
    deliveries = [
        WebhookDelivery(
            event_id=event.id, job_id=job.id, subscription_id=sid, url=url, status=PENDING, attempts=0,
            next_try_at=now, created_at=now, published_at=now if _listeners else None,
        )
        for sid, url in targets
    ]  # fmt: skip
    session.add_all(deliveries)
    session.flush()
    return [d.id for d in deliveries]


def after(job_id: str | None, projects: list[str] | None, cursor: int, limit: int) -> list[Event]:
    """Events past cursor, oldest first: of one job, or of some projects (None: all)."""
    query = select(Event).where(Event.id > cursor).order_by(Event.id).limit(limit)
    if job_id is not None:
        query = query.where(Event.job_id == job_id)
    if projects is not None:
        query = query.where(Event.project.in_(projects))
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query))


def last_id() -> int:
    """The newest event's id (0: none): where a stream that asks for no history starts."""
    with engine().connect() as conn:
        return int(conn.execute(select(Event.id).order_by(Event.id.desc()).limit(1)).scalar() or 0)


def last_of(job_id: str) -> int:
    """The id of a job's newest event (0: none)."""
    query = select(Event.id).where(Event.job_id == job_id).order_by(Event.id.desc()).limit(1)
    with engine().connect() as conn:
        return int(conn.execute(query).scalar() or 0)
