"""What the API, beat and the reaper say to workers through the broker: run this job, stop that one.

Messages go by task name, so a publishing process never imports the worker's tasks (robotni/worker/tasks.py).
"""

from __future__ import annotations

import logging

from kombu import pools

from robotni.broker import DELIVER_WEBHOOK_TASK, RUN_JOB_TASK, WEBHOOK_QUEUE
from robotni.celery import app
from robotni.config import settings
from robotni.store.models import Job
from robotni.worktypes.registry import registry

log = logging.getLogger(__name__)
# Celery's own hard limit sits this far above the runner's, as a net for a runner that hangs.
CELERY_LIMIT_MARGIN = 30


def enqueue(job: Job) -> None:
    """Publish the job's message; the task id is the job id, so Flower and revoke speak of jobs.

    The message wakes a pool process of the job's queue, which takes the best job it may start then
    (robotni/store/claims.py): this one, or one that should go first.
    """
    wtype = registry()[job.type]
    app.send_task(
        RUN_JOB_TASK,
        (job.id,),
        {"queue": job.queue},
        task_id=job.id,
        queue=job.queue,
        # celery-types says int; Celery hands the seconds to its pool as they are, fractions too.
        time_limit=wtype.hard_time_limit + settings().kill_grace + CELERY_LIMIT_MARGIN,  # type: ignore[arg-type]
        headers={"robotni_type": job.type, "robotni_project": job.project},
    )


def deliver(delivery_id: int) -> None:
    """Ask a webhooks worker to try a delivery (robotni/webhooks/delivery.py decides whether it is due)."""
    app.send_task(DELIVER_WEBHOOK_TASK, (delivery_id,), queue=WEBHOOK_QUEUE)


def deliver_all(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        deliver(delivery_id)


def revoke(job_id: str) -> None:
    """Stop a running job now where the broker broadcasts; the cancel mark on its row does it otherwise."""
    app.control.revoke(job_id, terminate=True, signal="SIGTERM")


def depth(queue: str) -> int | None:
    """Messages waiting in the broker for a queue (not those reserved by workers); None when it cannot tell."""
    # A pooled connection (the heartbeat asks every few seconds) with a channel of its own: a failed passive
    # declare spoils the channel it ran on.
    with pools.connections[app.connection_for_write()].acquire(block=True) as conn:
        try:
            conn.ensure_connection(max_retries=1)
            with conn.channel() as channel:
                declared = channel.queue_declare(queue=queue, passive=True)
                return int(declared.message_count)
        except conn.channel_errors:
            return 0  # Redis keeps no empty list: a queue it does not know is an empty one
        except conn.connection_errors:
            log.warning("broker unreachable: no lost message is resent this time", exc_info=True)
            return None
