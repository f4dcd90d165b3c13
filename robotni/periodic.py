"""The tasks beat sends (celeryconfig.beat_schedule): schedule dispatch each second, cleanup every few minutes.

They run on a worker of the `default` queue like any task, and are thin: the decisions live in
robotni/schedules.py and robotni/cleanup.py, which take the current time as an argument.
Beat itself only loads the schedules file when it starts.
"""

from __future__ import annotations

import logging

from celery.signals import beat_init

from robotni import cleanup, schedule_file, schedules
from robotni.celery import app
from robotni.config import settings
from robotni.db import utcnow
from robotni.tasks import enqueue

log = logging.getLogger(__name__)
DISPATCH_TASK = "robotni.dispatch_schedules"
CLEANUP_TASK = "robotni.cleanup"


@app.task(name=DISPATCH_TASK)
def dispatch_schedules() -> int:
    """Create and publish the jobs of every schedule due now; how many."""
    made = schedules.dispatch(utcnow(), enqueue)
    for job in made:
        log.info("schedule job %s (%s) created", job.id, job.type)
    return len(made)


@app.task(name=CLEANUP_TASK)
def cleanup_old() -> dict[str, int]:
    """Remove finished jobs past the retention, their folders, and the broker's consumed messages."""
    current = settings()
    processed = current.broker_dir / "processed" if current.uses_filesystem_broker else None
    return cleanup.run(utcnow(), current.retention_days, current.jobs_dir, processed)


@beat_init.connect
def _load_schedules_file(**_) -> None:
    """A bad schedules file stops beat at start with the reason (SystemExit passes Celery's signal guard)."""
    path = settings().schedules_file
    if path is None:
        return
    try:
        counts = schedule_file.sync(path, utcnow())
    except schedule_file.ScheduleFileError as exc:
        raise SystemExit(f"robotni: {exc}") from None
    log.info("schedules file %s loaded: %s", path, counts)
