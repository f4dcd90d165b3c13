"""Robotni's Celery settings, all derived from Robotni's configuration (robotni/config.py) and worker registry."""

from kombu import Queue

from robotni.broker import CLEANUP_TASK, WEBHOOK_QUEUE
from robotni.broker.transport import transport_class, transport_options
from robotni.config import WorkerPool, settings
from robotni.worktypes.registry import registry

_settings = settings()

broker_url = _settings.broker_url
broker_transport = transport_class(_settings)
broker_transport_options = transport_options(_settings, registry())
broker_connection_retry_on_startup = True

# JSON only, on the wire and for results: no pickle anywhere.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"
# The job table holds outcomes; Celery's result backend would be a second, weaker copy.
task_ignore_result = True

# A message is acked after the job ended; a lost worker is the reaper's business, not a redelivery loop.
task_acks_late = True
task_reject_on_worker_lost = False
worker_prefetch_multiplier = _settings.prefetch_multiplier
# Jobs at once when the command line gives no --concurrency (ROBOTNI_WORKER_CONCURRENCY).
worker_concurrency = _settings.worker_concurrency
# ROBOTNI_WORKER_POOL, not the command line's --pool: Celery takes a --pool of prefork (its default) for "not given".
worker_pool = {WorkerPool.THREADS: "robotni.worker.pool:ThreadPool", WorkerPool.PREFORK: "prefork"}[
    _settings.worker_pool
]
# `--autoscale max,min`: Celery's autoscaler, counting the processes it stops only once (robotni/worker/autoscale.py).
worker_autoscaler = "robotni.worker.autoscale:Autoscaler"
# A new pool process opens the job store and starts its types' fork servers before it reports up. Celery kills one
# that takes over 4 s (its default) and starts another: on a loaded machine, growing the pool did that.
worker_proc_alive_timeout = 20.0

task_default_queue = "default"
task_queues = [Queue(name, routing_key=name) for name in (*registry().queues, WEBHOOK_QUEUE)]
task_create_missing_queues = True

# Task events cost a worker about 0.5 ms of CPU a job (docs/benchmarks.md), so a worker sends them only once a
# monitor asks: Flower does as it starts (robotni/flower.py) and every 5 s after, for workers started later;
# `celery -A robotni control enable_events` before `celery events`. The API's `task-sent` stays on: Flower shows a
# job queued before any worker took it.
worker_send_task_events = False
task_send_sent_event = True

worker_hijack_root_logger = False
timezone = "UTC"
enable_utc = True

# Beat sends the cleanup to the default queue (robotni/schedules/beat.py; it dispatches schedules itself). A cleanup
# message that waited a whole period behind busy pool processes is dropped: the next one does the same work.
beat_schedule = {
    "robotni-cleanup": {
        "task": CLEANUP_TASK,
        "schedule": _settings.cleanup_seconds,
        "options": {"queue": "default", "expires": _settings.cleanup_seconds},
    },
}
