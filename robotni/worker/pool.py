"""The job queues' pool (ROBOTNI_WORKER_POOL): Celery's threads pool by default, with a `terminate` that reaches jobs.

A job is a process of its own, so a pool slot only waits on it: threads do that in one interpreter, without a
process (and its memory) per slot or a hand-over of every task between processes. Celery cannot kill a thread;
`revoke(terminate=True)` has already recorded the cancel in the job's row (robotni/worker/control.py), so here it
makes the jobs running in this worker read their cancel marks at once. A prefork pool process does the same on the
SIGTERM Celery sends it. Either way the signalled slot may be running another job than the revoked one (a message
wakes a slot for the best job of its queue): only the job's row says which job is to stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.concurrency import thread

_checks: set[threading.Event] = set()  # one per task running in this process
_in_pool_process = [False]


def forked_as_pool_process() -> None:
    """A prefork pool process starts: its tasks run in its main thread, which may take SIGTERM from `terminate`."""
    _in_pool_process[0] = True


@contextmanager
def terminate_checks(check_now: threading.Event) -> Iterator[None]:
    """While a task runs: a `terminate` aimed at this worker sets check_now instead of ending the thread or process."""
    previous = signal.signal(signal.SIGTERM, lambda *_: check_now.set()) if _in_pool_process[0] else None
    _checks.add(check_now)
    try:
        yield
    finally:
        _checks.discard(check_now)
        if _in_pool_process[0]:
            signal.signal(signal.SIGTERM, previous)


def _check_all() -> None:
    for check_now in list(_checks):
        check_now.set()


class _Applied(thread.ApplyResult):  # type: ignore[name-defined,misc]  # celery-types leaves it out
    def terminate(self, signal: int | None = None) -> None:
        """What Celery calls beside terminate_job for a task it terminates: the same look at the cancel marks."""
        _check_all()


class ThreadPool(thread.TaskPool):
    """Celery's threads pool; `terminate` makes this worker's jobs read their cancel marks now."""

    def on_apply(self, *args: Any, **kwargs: Any) -> Any:  # celery-types says None: Celery keeps a weak reference
        return _Applied(super().on_apply(*args, **kwargs).f)

    def terminate_job(self, pid: int, signal: int | None = None) -> None:
        _check_all()
