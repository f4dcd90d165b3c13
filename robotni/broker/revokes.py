"""A Celery revoke of a job's task id, from anywhere (Flower, `celery control revoke`, `app.control.revoke`), is a
Robotni cancel.

Celery keeps a revoked id in each worker's memory only: a worker that never heard the broadcast runs the job
anyway, and one that did discards its message while the job row still says `queued` (the reaper's resends are
discarded too: a job that never ends). So the revoke is written to the row, where every worker looks: a waiting job
ends `cancelled` and no message can start it; a running one is marked and its worker stops it. Workers do this
as they hear the broadcast (robotni/worker/control.py); beat's listener here hears it while no worker runs.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kombu import Message

from robotni.celery import app
from robotni.store import jobs

log = logging.getLogger(__name__)
# Celery's control commands that revoke tasks: `terminate` is `revoke(terminate=True)`.
REVOKE_METHODS = frozenset({"revoke", "terminate"})
ASKED_BY = "Celery revoke"
# After the broker went away, the listener connects again this often.
RECONNECT_SECONDS = 2.0
# drain_events wakes this often to notice a stop.
DRAIN_TIMEOUT = 1.0


def revoked_ids(body: Any) -> list[str]:
    """The task ids a control message revokes, or none (any other command, or a malformed one)."""
    if not isinstance(body, Mapping) or body.get("method") not in REVOKE_METHODS:
        return []
    arguments = body.get("arguments")
    ids = arguments.get("task_id") if isinstance(arguments, Mapping) else None
    if isinstance(ids, str):
        return [ids]
    return [task_id for task_id in ids or [] if isinstance(task_id, str)] if isinstance(ids, list | tuple) else []


def cancel(task_ids: list[str]) -> None:
    """Record each revoke on its job's row (ids that are no job, such as a cleanup task's, change nothing)."""
    for task_id in task_ids:
        job = jobs.cancel(task_id, asked_by=ASKED_BY)
        if job is not None:
            log.info("job %s: revoked through Celery; it is %s", task_id, job.status)


class RevokeListener(threading.Thread):
    """Hears every broadcast revoke and records it. It never replies, so `celery inspect` does not list it."""

    def __init__(self, on_revoke: Callable[[list[str]], None] = cancel):
        super().__init__(name="robotni-revokes", daemon=True)
        self.on_revoke = on_revoke
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self._listen()
            except Exception:  # the broker or the store is away for a moment: listen again
                log.warning("revoke listener interrupted; listening again", exc_info=True)
                self.stopped.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        with app.connection_for_read() as conn:
            mailbox = app.control.mailbox  # type: ignore[attr-defined]  # celery-types lacks Control.mailbox
            node = mailbox.Node(f"robotni-revokes@{socket.gethostname()}", channel=conn.default_channel)
            node.listen(callback=self._on_message)
            while not self.stopped.is_set():
                try:
                    conn.drain_events(timeout=DRAIN_TIMEOUT)
                except TimeoutError:
                    continue

    def _on_message(self, body: Any, message: Message) -> None:
        ids = revoked_ids(body)
        if ids:
            self.on_revoke(ids)

    def stop(self) -> None:
        self.stopped.set()
        self.join()
