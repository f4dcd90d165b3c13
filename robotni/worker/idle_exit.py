"""ROBOTNI_WORKER_IDLE_EXIT: a worker that ran no job for that long stops itself, so a supervisor can scale to zero.

It stops as a SIGTERM would stop it (Celery's warm shutdown, exit status 0): a message it had reserved but not
started goes back to the broker, a job it had claimed finishes (or is requeued after the grace), and its heartbeat
row is removed. A job published meanwhile stays queued and is sent again by the next worker's reaper.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from robotni.store.queries import running_on

log = logging.getLogger(__name__)


class IdleExit:
    """Checked from the heartbeat's chores: ends the worker once it has run no job for `after` seconds."""

    def __init__(self, worker: str, after: float):
        self.worker, self.after = worker, after
        self.last_busy = time.monotonic()
        self.stopping = False

    def check(self) -> None:
        if self.stopping:
            return
        if running_on(self.worker):
            self.last_busy = time.monotonic()
            return
        idle = time.monotonic() - self.last_busy
        if idle >= self.after:
            log.info("worker %s ran no job for %.0f s (ROBOTNI_WORKER_IDLE_EXIT): stopping", self.worker, idle)
            self.stopping = True
            os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown, from its own signal handler
