"""The worker's life around its tasks, from Celery's signals: what it prepares before the pool starts and in each
pool process, its heartbeat and periodic chores while it runs, and what it hands back as it stops."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

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

from robotni import logsetup
from robotni.broker import WEBHOOK_QUEUE, cleaning, publish
from robotni.celery import app
from robotni.config import settings
from robotni.errors import SchemaOutdated
from robotni.runner import confinement
from robotni.store import dependencies, events, jobs, worker_beats
from robotni.store.engine import engine
from robotni.store.queries import running_on
from robotni.webhooks import delivery
from robotni.worker import control, execution, handoff, heartbeat, orphan_sweep, pool, reaper
from robotni.worker.idle_exit import IdleExit
from robotni.worktypes import environments
from robotni.worktypes.registry import registry

log = get_task_logger(__name__)
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
    if issubclass(instance.pool_cls, pool.ThreadPool):  # type: ignore[attr-defined]  # celery-types leaves it out
        _fork_servers_for_slots(instance.concurrency)  # type: ignore[attr-defined]  # its threads run the jobs


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
    """Each prefork pool process starts the fork servers of its `isolation = "fork"` types before it takes a job."""
    pool.forked_as_pool_process()
    _fork_servers_for_slots(1)


def _fork_servers_for_slots(slots: int) -> None:
    queues = set(app.amqp.queues.consume_from)
    execution.start_fork_servers([t for t in registry().values() if t.queue in queues], settings(), slots)


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
    Requeueing takes the rows away from this worker's attempts: its lease keeper sees it on the next beat
    and stop the scripts, so the warm shutdown Celery is waiting for ends too. No message is sent from here
    (this worker may still be consuming); the reaper of a live worker sends one.

    Celery calls this inside its signal handler, which may have interrupted the main thread in a write of its
    own (a revoke being recorded): a write from here would wait on that thread's lock, which it holds until the
    handler returns. The store is left to a thread.
    """
    handoff.stop()
    grace_ends = time.monotonic() + settings().shutdown_grace
    # A daemon: jobs that end within the grace must not keep the process waiting for it.
    threading.Thread(target=_hand_back, args=(sender, grace_ends), name="robotni-stopping", daemon=True).start()


def _hand_back(worker: str, grace_ends: float) -> None:
    try:
        _stop_heartbeat()
    except Exception:  # its row ages out of the live list in a few beats: the requeue matters more
        log.warning("worker %s: heartbeat row not removed", worker, exc_info=True)
    time.sleep(max(0.0, grace_ends - time.monotonic()))
    for job_id in running_on(worker):
        job = jobs.get(job_id)
        if job is not None and jobs.requeue(job, error=f"worker {worker} stopped; requeued") is not None:
            log.warning("job %s: requeued as worker %s stops", job_id, worker, extra=logsetup.job_fields(job))


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    """From the thread that hands jobs back as the shutdown begins, and at its end: the process must not exit while
    that thread is still removing the row (a quick shutdown did, and the stopped worker stayed listed)."""
    for beat in _heartbeat:
        beat.stop()
