"""The job queues' pool (ROBOTNI_WORKER_POOL): threads by default, resizable, with a `terminate` that reaches jobs.

A job is a process of its own, so a pool slot only waits on it: threads do that in one interpreter, without a
process (and its memory) per slot or a hand-over of every task between processes. Celery cannot kill a thread;
`revoke(terminate=True)` has already recorded the cancel in the job's row (robotni/worker/control.py), so here it
makes the jobs running in this worker read their cancel marks at once. A prefork pool process does the same on the
SIGTERM Celery sends it. Either way the signalled slot may be running another job than the revoked one (a message
wakes a slot for the best job of its queue): only the job's row says which job is to stop.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from typing import Any

from celery.concurrency import thread
from celery.concurrency.base import BasePool, apply_target

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


class _Slots:
    """How many tasks may run at once: Celery's grow and shrink (Flower's buttons, `--autoscale`) move the limit,
    and once the pool closes (a warm shutdown) a task that has not started never does, as in a prefork pool."""

    def __init__(self, limit: int) -> None:
        self.limit, self.running, self.closed = limit, 0, False
        self.changed = threading.Condition()

    @contextmanager
    def taken(self) -> Iterator[bool]:
        """A slot until the block ends (True), or none at all once the pool closed (False)."""
        with self.changed:
            self.changed.wait_for(lambda: self.closed or self.running < self.limit)
            took = not self.closed
            self.running += took
        try:
            yield took
        finally:
            if took:
                with self.changed:
                    self.running -= 1
                    self.changed.notify_all()

    def change(self, *, limit: int | None = None, closed: bool = False) -> None:
        with self.changed:
            self.limit = self.limit if limit is None else limit
            self.closed = self.closed or closed
            self.changed.notify_all()

    def wait_until_idle(self) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.running == 0)


class _Threads:
    """Long-lived daemon threads that run what is submitted, a new one when none is idle.

    Not a ThreadPoolExecutor: the interpreter joins an executor's threads at exit, so a worker whose shutdown gave
    up on its jobs would still wait for each to end. A daemon thread ends with the process, and the jobs with it
    (their parent-death signal), as with a prefork pool process. The threads stay: a fork server follows the
    thread that started it.
    """

    def __init__(self) -> None:
        self.work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self.idle = threading.Semaphore(0)

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        if not self.idle.acquire(blocking=False):
            threading.Thread(target=self._serve, name="robotni-slot", daemon=True).start()
        self.work.put((future, fn))
        return future

    def _serve(self) -> None:
        while True:
            future, fn = self.work.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # the future carries it, as an executor's does
                    future.set_exception(exc)
            self.idle.release()


class ThreadPool(BasePool):
    """Celery's threads pool, resizable, on daemon threads; `terminate` makes this worker's jobs read their cancel
    marks now."""

    body_can_be_buffer = True  # as Celery's threads pool: a task's body is read in this process
    signal_safe = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads = _Threads()
        self.slots = _Slots(self.limit)

    def on_apply(self, *args: Any, **kwargs: Any) -> Any:  # celery-types says None: Celery keeps a weak reference
        return _Applied(self.threads.submit(partial(self._in_a_slot, *args, **kwargs)))

    def _in_a_slot(
        self,
        target: Any,
        args: Any = None,
        kwargs: Any = None,
        callback: Any = None,
        accept_callback: Any = None,
        **_: Any,
    ) -> Any:
        with self.slots.taken() as running:
            return apply_target(target, args, kwargs, callback, accept_callback) if running else None

    def on_close(self) -> None:
        self.slots.change(closed=True)

    def on_stop(self) -> None:
        """A warm shutdown: the tasks running end first (their jobs are handed back after the grace)."""
        self.slots.change(closed=True)
        self.slots.wait_until_idle()

    def grow(self, n: int = 1) -> None:
        self.limit += n
        self.slots.change(limit=self.limit)

    def shrink(self, n: int = 1) -> None:
        self.limit = max(self.limit - n, 0)
        self.slots.change(limit=self.limit)

    def terminate_job(self, pid: int, signal: int | None = None) -> None:
        _check_all()

    def _get_info(self) -> Any:
        info = super()._get_info()  # type: ignore[misc]  # celery-types leaves it out
        return {**info, "max-concurrency": self.limit, "running": self.slots.running}
