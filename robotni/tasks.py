"""Celery tasks: thin, they only move job state and hand the work to robotni.execution."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery.signals import worker_ready, worker_shutdown
from celery.utils.log import get_task_logger

from robotni import jobs
from robotni.celery import app
from robotni.config import settings
from robotni.db import Job
from robotni.errors import RobotniError
from robotni.execution import execute
from robotni.registry import registry
from robotni.runner import Outcome
from robotni.status import JobStatus
from robotni.workers import Heartbeat

log = get_task_logger(__name__)
# Celery's own hard limit sits this far above the runner's, as a net for a runner that hangs.
CELERY_LIMIT_MARGIN = 30


_heartbeat: list[Heartbeat] = []


@worker_ready.connect
def _start_heartbeat(sender, **_) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from)
    beat = Heartbeat(sender.hostname, queues, sender.controller.concurrency, settings().heartbeat_seconds)
    beat.start()
    _heartbeat.append(beat)


@worker_shutdown.connect
def _stop_heartbeat(**_) -> None:
    while _heartbeat:
        _heartbeat.pop().stop()


def enqueue(job: Job) -> None:
    """Publish the job's message; the task id is the job id, so Flower and revoke speak of jobs."""
    wtype = registry()[job.type]
    run_job.apply_async(
        (job.id,),
        task_id=job.id,
        queue=job.queue,
        time_limit=wtype.hard_time_limit + settings().kill_grace + CELERY_LIMIT_MARGIN,
        headers={"robotni_type": job.type, "robotni_project": job.project},
    )


def revoke(job_id: str) -> None:
    """Stop a running job now where the broker broadcasts; the cancel mark on its row does it otherwise."""
    app.control.revoke(job_id, terminate=True, signal="SIGTERM")


@contextmanager
def _sigterm_sets(event: threading.Event) -> Iterator[None]:
    """`revoke(terminate=True)` signals this pool process: stop the job cleanly instead of dying with it."""
    previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.task(name="robotni.run_job", bind=True)
def run_job(self, job_id: str) -> str:
    job = jobs.claim(job_id, worker=self.request.hostname, lease_seconds=settings().lease_seconds)
    if job is None:
        log.info("job %s: not queued (done, cancelled or taken): duplicate message skipped", job_id)
        return "skipped"
    log.info("job %s: %s attempt %d started", job.id, job.type, job.attempts)
    cancel = threading.Event()
    try:
        with _sigterm_sets(cancel):
            outcome, visible = execute(job, registry()[job.type], settings(), cancel)
    except RobotniError as exc:  # the type, script or venv went away since submit
        outcome, visible = Outcome(JobStatus.FAILED, error=f"cannot start: {exc}"), {}
    ended = jobs.finish(
        job,
        outcome.status,
        result=outcome.result,
        error=outcome.error,
        exit_code=outcome.exit_code,
        **visible,
    )
    if ended is None:
        log.warning("job %s: attempt %d lost its lease; outcome not recorded", job.id, job.attempts)
        return "lost"
    log.info("job %s: %s", job.id, outcome.status.value)
    return outcome.status.value
