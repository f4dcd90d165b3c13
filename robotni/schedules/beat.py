"""What beat does: dispatch due schedules each second in its own process (and send the cleanup task).

Dispatch runs in beat, not as a task: a task would wait for a free pool slot of a `default` worker, and with
every slot busy with long jobs, schedules of other queues would start late. Beat runs exactly once, and two by
mistake still make one job per due time (robotni/schedules/dispatch.py). Cleanup is a task on a worker of the
`default` queue (beat_schedule in robotni/broker/celeryconfig.py; the task in robotni/worker/tasks.py): it removes
that machine's job folders, and minutes late do no harm. The decisions live in robotni/schedules/dispatch.py and
robotni/store/retention.py, which take the current time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import beat_init

from robotni.broker import revokes
from robotni.broker.publish import enqueue
from robotni.config import SCHEDULE_TICK_SECONDS, settings
from robotni.schedules import dispatch, file
from robotni.store import dependencies
from robotni.store.models import utcnow

log = logging.getLogger(__name__)


def _dispatch_forever() -> None:
    """Each tick, create and publish the jobs of every schedule due by now."""
    while True:
        time.sleep(SCHEDULE_TICK_SECONDS)
        try:
            made = dispatch.dispatch(utcnow(), enqueue)
        except Exception:  # the store or the broker is down for a moment: the next tick catches up
            log.exception("schedule dispatch failed")
            continue
        for job in made:
            log.info("schedule job %s (%s) created", job.id, job.type)


@beat_init.connect
def _load_schedules_file(**_: Any) -> None:
    """A bad schedules file stops beat at start with the reason (SystemExit passes Celery's signal guard)."""
    path = settings().schedules_file
    if path is None:
        return
    try:
        counts = file.sync(path, utcnow())
    except file.ScheduleFileError as exc:
        raise SystemExit(f"robotni: {exc}") from None
    log.info("schedules file %s loaded: %s", path, counts)


@beat_init.connect
def _hear_revokes(**_: Any) -> None:
    """A revoke sent while no worker runs still cancels its job (robotni/broker/revokes.py), and its dependents
    that the cancel released are published from here."""
    dependencies.publish_released_with(enqueue)
    revokes.RevokeListener().start()


@beat_init.connect
def _start_dispatch(**_: Any) -> None:
    """After the schedules file (receivers run in the order they connect). A daemon thread ends with beat; a tick
    cut short leaves a made job queued for the reaper to publish, or a due schedule for the next tick."""
    threading.Thread(target=_dispatch_forever, name="robotni-dispatch", daemon=True).start()
