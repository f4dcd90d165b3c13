"""Celery tasks: thin, they only move job state and hand the work to robotni.worker.execution. What the worker does
around them (its start, heartbeat, chores and stop) is robotni.worker.lifecycle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task
from celery.utils.log import get_task_logger
from sqlalchemy.exc import OperationalError

from robotni import logsetup
from robotni.broker import CLEANUP_TASK, DELIVER_WEBHOOK_TASK, RUN_JOB_TASK, publish
from robotni.celery import app
from robotni.config import settings
from robotni.errors import RobotniError
from robotni.runner.run import Outcome
from robotni.status import JobStatus
from robotni.store import claims, jobs, retention
from robotni.store.models import Job, utcnow
from robotni.webhooks import delivery
from robotni.worker import handoff, leases, pool
from robotni.worker.execution import execute
from robotni.worktypes.registry import registry

log = get_task_logger(__name__)
# Between tries to record an outcome while the job store is down.
STORE_RETRY_SECONDS = 0.5


def _record(job: Job, outcome: Outcome, visible: dict[str, Any]) -> Job | None:
    """The attempt's end: a retry when the script asks for one (or timed out, if allowed) and attempts remain."""
    policy = registry()[job.type].retry
    values = {"result": outcome.result, "error": outcome.error, "exit_code": outcome.exit_code, **visible}
    retryable = outcome.wants_retry or (outcome.status is JobStatus.TIMED_OUT and policy.on_timeout)
    if retryable and job.attempts < job.max_attempts:
        return jobs.retry_later(job, policy.delay(job.attempts), **values)
    if outcome.wants_retry:
        values["error"] = f"{outcome.error}: asked for a retry, but all {job.max_attempts} attempts are used"
    return jobs.finish(job, outcome.status, **values)


T = TypeVar("T")


def _until_stored(write: Callable[[], T], patience: float) -> T:
    """Retry a write while the job store is unreachable (a restart): the outcome of a run must not be dropped.

    Past `patience` (the lease) the row is the reaper's anyway, and the compare-and-set would refuse the write.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return write()
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            log.warning("job store unreachable; recording the outcome again shortly", exc_info=True)
            time.sleep(STORE_RETRY_SECONDS)


def _wake_waiting(job: Job, limits: claims.Caps) -> None:
    """A slot of the job's concurrency key (or of its project's cap) is free: wake the next job waiting for one.

    Its message was used up by a process that found it over the limit; the reaper resends it if this one is lost.
    """
    keys = [Job.concurrency_key == job.concurrency_key] if job.concurrency_key is not None else None
    for where in (keys, [Job.project == job.project] if limits.project_max_running else None):
        waiting = None if where is None else claims.next_waiting(where)
        if waiting is not None:
            publish.enqueue(waiting)


def _queue_of(job_id: str) -> str | None:
    """The queue a message without one named came for (sent before queues were named in messages)."""
    job = jobs.get(job_id)
    return None if job is None else job.queue


@app.task(name=RUN_JOB_TASK, bind=True)
def run_job(self: Task[Any, Any], job_id: str, queue: str | None = None) -> str:
    """Wake-up for a queue: run the best job it may start now (robotni/store/claims.py), often job_id itself."""
    check_now = leases.CheckNow()
    # From the first moment: a `terminate` aimed at job_id must not kill the job this slot claims instead.
    with pool.terminate_checks(check_now):
        return _claim_and_run(self.request.hostname, job_id, queue, check_now)


def _claim_and_run(worker: str | None, job_id: str, queue: str | None, check_now: threading.Event) -> str:
    """Claim and run the best job of the queue; then, while its outcome released a job of the queue, the next best
    (robotni/worker/handoff.py: a chain's next step runs here, without a broker round trip)."""
    assert worker is not None  # a worker's request names its worker (and apply()'s the host)
    queue = queue or _queue_of(job_id)
    limits, ended, kept = claims.caps(), "skipped", list[Job]()
    try:
        while queue is not None:
            job = claims.claim_next(queue, worker, settings().lease_seconds, limits)
            if job is None:
                break
            ended, kept = _run(job, limits, check_now)
            if not kept:
                return ended
    finally:
        handoff.send(kept, publish.enqueue)  # none taken here: the kept job needs its wake-up
    if ended == "skipped":
        log.info("message for job %s: no job of queue %s may start now (taken, ended or over a limit)", job_id, queue)
    return ended


def _run(job: Job, limits: claims.Caps, check_now: threading.Event) -> tuple[str, list[Job]]:
    """One claimed job: its run and its recorded outcome; how it ended, and a job it released to run next here."""
    logsetup.bind_job(job)  # every line until the task ends carries job_id, type, project and attempt
    log.info("job %s: %s attempt %d started", job.id, job.type, job.attempts)
    try:
        outcome, visible = execute(job, registry()[job.type], settings(), check_now)
    except RobotniError as exc:  # the type, script or venv went away since submit
        outcome, visible = Outcome(JobStatus.FAILED, error=f"cannot start: {exc}"), {}
    except Exception as exc:  # a bug of Robotni's: the job ends saying so now, not when its lease runs out
        log.exception("job %s: the worker failed around the run", job.id)
        outcome, visible = (
            Outcome(JobStatus.FAILED, error=f"Robotni's worker failed: {exc.__class__.__name__}: {exc}"),
            {},
        )
    with handoff.keeping(job.queue, publish.enqueue) as kept:
        ended = _until_stored(lambda: _record(job, outcome, visible), settings().lease_seconds)
    try:
        _wake_waiting(job, limits)
    except Exception:  # the broker is down: the reaper sends the waiting job's message once it is idle
        log.warning("job %s: no wake-up sent for jobs waiting on its slot", job.id, exc_info=True)
    if ended is None:
        log.warning("job %s: attempt %d lost its lease; outcome not recorded", job.id, job.attempts)
        return "lost", kept
    log.info("job %s: attempt %d ended %s, job is %s", job.id, job.attempts, outcome.status.value, ended.status)
    return ended.status, kept


@app.task(name=CLEANUP_TASK)
def cleanup_old() -> dict[str, int]:
    """Remove finished jobs past the retention, their folders, and the broker's consumed messages."""
    current = settings()
    processed = current.broker_dir / "processed" if current.uses_filesystem_broker else None
    return retention.run(utcnow(), current.retention_days, current.jobs_dir, processed)


@app.task(name=DELIVER_WEBHOOK_TASK)
def deliver_webhook(delivery_id: int) -> None:
    """One try of a webhook delivery; the job's next event for the same receiver follows once it is done."""
    following = delivery.attempt(delivery_id, settings())
    if following is not None:
        publish.deliver(following)
