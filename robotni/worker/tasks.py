"""Celery tasks and worker hooks: thin, they only move job state and hand the work to robotni.worker.execution."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from celery import Task
from celery.apps.worker import Worker
from celery.signals import (
    celeryd_after_setup,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from celery.utils.log import get_task_logger
from celery.worker.consumer import Consumer
from sqlalchemy.exc import OperationalError

from robotni import logsetup
from robotni.broker import CLEANUP_TASK, DELIVER_WEBHOOK_TASK, RUN_JOB_TASK, WEBHOOK_QUEUE, cleaning, publish
from robotni.celery import app
from robotni.config import settings
from robotni.errors import RobotniError, SchemaOutdated
from robotni.runner import confinement
from robotni.runner.run import Outcome
from robotni.status import JobStatus
from robotni.store import claims, dependencies, events, jobs, retention, worker_beats
from robotni.store.engine import engine
from robotni.store.models import Job, utcnow
from robotni.store.queries import running_on
from robotni.webhooks import delivery
from robotni.worker import control, execution, handoff, heartbeat, orphan_sweep, reaper
from robotni.worker.execution import execute
from robotni.worker.idle_exit import IdleExit
from robotni.worktypes import environments
from robotni.worktypes.registry import registry

log = get_task_logger(__name__)
# Between tries to record an outcome while the job store is down.
STORE_RETRY_SECONDS = 0.5
_heartbeat: list[heartbeat.Heartbeat] = []
_idle_exit: list[IdleExit] = []


# Broker cleaning looks at every file of the folder: a few times per stale period is enough.
BROKER_CLEANS_PER_STALE_PERIOD = 5
# A dead worker's leftovers are idle processes, not a hazard: a look through /proc this often is plenty.
ORPHAN_SWEEP_SECONDS = 10.0
_last_done: dict[str, float] = {}
events.on_deliveries(publish.deliver_all)  # a job's webhooks go out as soon as its change commits


def _due(chore: str, every: float) -> bool:
    """True at the first call and then once per `every` seconds."""
    now = time.monotonic()
    if chore in _last_done and now - _last_done[chore] < every:
        return False
    _last_done[chore] = now
    return True


def _chores() -> None:
    """The worker main process's periodic duties: recovery, a dead worker's leftover processes, and keeping the
    filesystem broker bounded."""
    current = settings()
    idle = [queue for queue in worker_beats.free_queues(current.heartbeat_seconds) if publish.depth(queue) == 0]
    reaper.reap(publish.enqueue, idle, current.republish_after, current.lost_attempts)
    # Deliveries whose message never went out, or (webhooks queue empty) whose message was lost with a worker.
    delivery.sweep(publish.deliver, delivery.lease_seconds(current) if publish.depth(WEBHOOK_QUEUE) == 0 else None)
    for watch in _idle_exit:
        watch.check()
    if _due("orphans", ORPHAN_SWEEP_SECONDS):
        orphan_sweep.kill_orphans()
    if current.uses_filesystem_broker and _due("broker", current.broker_stale_seconds / BROKER_CLEANS_PER_STALE_PERIOD):
        queues = {*registry().queues, WEBHOOK_QUEUE}
        counts = cleaning.clean(current.broker_dir, queues, current.broker_stale_seconds)
        if any(counts.values()):
            log.info("broker folder cleaned: %s", counts)


@celeryd_after_setup.connect
def _build_environments(sender: str, instance: Worker, **_: Any) -> None:
    """Before the pool and consumer start (so never inside a job's limit): the environments of this worker's types."""
    queues = set(instance.app.amqp.queues.consume_from)
    environments.build_types([(t.name, t.env) for t in registry().values() if t.queue in queues], settings())
    execution.prepare(settings())  # the standard-library environment of types without one of their own


@worker_init.connect
def _refuse_outdated_schema(**_: Any) -> None:
    """Stop here with the reason: Celery would log an exception from a signal handler and carry on."""
    try:
        engine()
    except SchemaOutdated as exc:
        print(f"robotni: {exc}", file=sys.stderr, flush=True)  # logging is not set up yet at worker_init
        raise SystemExit(1) from None


@worker_init.connect
def _revoke_is_cancel(**_: Any) -> None:
    """Before the consumer starts its mailbox: Celery's revoke and terminate also cancel the job in the store."""
    control.install()


@worker_init.connect
def _publish_released(**_: Any) -> None:
    """A job this worker ends may release its dependents: their messages go out from here (the pool forks later)."""
    dependencies.publish_released_with(handoff.publisher(publish.enqueue))


@worker_init.connect
def _sandbox_jobs(**_: Any) -> None:
    """Before any job runs: whom jobs run as, with the job store and the broker closed to that user."""
    engine()  # creates the store now, so its file gets its mode before a job could open it
    confinement.prepare_worker(settings())


@worker_process_init.connect
def _open_store(**_: Any) -> None:
    """Each pool process opens the store as it starts, so its schema check is not logged as part of a first job."""
    try:
        engine()
    except Exception:  # the store is down: the first job tries again, and fails as a job, not as a pool process
        log.warning("job store unavailable as a pool process started", exc_info=True)


@worker_process_init.connect
def _start_fork_servers(**_: Any) -> None:
    """Each pool process starts the fork servers of its `isolation = "fork"` types before it takes a job."""
    queues = set(app.amqp.queues.consume_from)
    execution.start_fork_servers([t for t in registry().values() if t.queue in queues], settings())


@worker_ready.connect
def _start_heartbeat(sender: Consumer, **_: Any) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from)
    current = settings()
    # celery-types leaves out Consumer.controller: the worker (a WorkController) that started the consumer.
    controller = sender.controller  # type: ignore[attr-defined]
    # Under --autoscale max,min the pool may grow to max: what a reaper may count on this worker to take.
    concurrency: int = controller.max_concurrency or controller.concurrency
    if current.worker_idle_exit > 0:
        _idle_exit.append(IdleExit(sender.hostname, current.worker_idle_exit))
    beat = heartbeat.Heartbeat(
        sender.hostname, queues, concurrency, current.heartbeat_seconds, _chores, current.reap_seconds
    )
    beat.start()
    _heartbeat.append(beat)


@worker_shutting_down.connect
def _requeue_after_grace(sender: str, **_: Any) -> None:
    """A stopping worker lets its jobs run for the grace period, then hands what is left back to the queue.

    It leaves the list of live workers at once, so no reaper (its own included) sends it new messages.
    Requeueing takes the rows away from this worker's attempts: their lease keepers see it on the next beat
    and stop the scripts, so the warm shutdown Celery is waiting for ends too. No message is sent from here
    (this worker may still be consuming); the reaper of a live worker sends one.
    """
    _stop_heartbeat()
    handoff.stop()
    timer = threading.Timer(settings().shutdown_grace, _requeue_running, (sender,))
    timer.daemon = True  # jobs that end within the grace must not keep the process waiting for the timer
    timer.start()


def _requeue_running(worker: str) -> None:
    for job_id in running_on(worker):
        job = jobs.get(job_id)
        if job is not None and jobs.requeue(job, error=f"worker {worker} stopped; requeued") is not None:
            log.warning("job %s: requeued as worker %s stops", job_id, worker, extra=logsetup.job_fields(job))


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    while _heartbeat:
        _heartbeat.pop().stop()


@contextmanager
def _sigterm_sets(event: threading.Event) -> Iterator[None]:
    """`revoke(terminate=True)` signals this pool process: read the cancel mark now instead of dying.

    The process may be running another job than the revoked task's (a message wakes a process for the best job
    of its queue), so only the job's row says whether this job is to stop.
    """
    previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    check_now = threading.Event()
    # From the first moment: a `terminate` aimed at job_id must not kill the job this process claims instead.
    with _sigterm_sets(check_now):
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
