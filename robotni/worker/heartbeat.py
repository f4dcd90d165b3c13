"""The worker main process's heartbeat thread: its row in the store, and its periodic chores."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from robotni.store import worker_beats

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Beats from the worker's main process until stopped, running `chores` each `chores_every` seconds."""

    def __init__(
        self,
        name: str,
        queues: list[str],
        concurrency: int,
        every: float,
        chores: Callable[[], None],
        chores_every: float,
    ):
        super().__init__(name="robotni-heartbeat", daemon=True)
        self.args = (name, queues, concurrency)
        self.every, self.chores, self.chores_every = every, chores, chores_every
        self.stopped = threading.Event()
        self.stopping = threading.Lock()
        self.forgotten = False

    def run(self) -> None:
        last_chores = 0.0
        while True:
            try:
                worker_beats.beat(*self.args)
                if time.monotonic() - last_chores >= self.chores_every:
                    last_chores = time.monotonic()
                    self.chores()
            except Exception:  # the store may be down for a moment; the next beat tries again
                log.exception("worker heartbeat failed")
            if self.stopped.wait(self.every):
                return

    def stop(self) -> None:
        """Stop beating and remove the row; a second caller returns once the first has removed it."""
        with self.stopping:
            if not self.forgotten:
                self.stopped.set()
                self.join()
                worker_beats.forget(self.args[0])
                self.forgotten = True
