"""A job that a pool slot's outcome released on its own queue is run next by that slot, without its message.

A dependent's message can only go out once its parent's end is committed, and then it takes the broker's round trip
and the worker's dispatch before a pool slot claims it: about 6 ms a step of a chain on Redis, half the polling
interval on the filesystem broker. The slot (a thread, or a prefork pool process) that ended the parent is free at
that moment, so it keeps one released job of its own queue unpublished and claims again at once
(robotni/worker/tasks.py). The claim takes the best job of the queue, as for any wake-up: if that is another job,
its message, still on the broker, becomes the wake-up of the kept one; if no job may start, the kept job's message
is sent then. If the worker dies in between, the kept job is `queued` with its message counted as sent, and a reaper
resends it as for a lost publish.

The other jobs a transition released (other queues, or more than one) are published at once, as before.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from robotni.store.models import Job

Publish = Callable[[Job], None]
# Set by the worker's main process as it starts shutting down; pool processes forked from it see the same page.
_stopping = multiprocessing.RawValue("b", 0)


class _Keeping(threading.local):
    """Per pool slot (a thread of a threads pool): while an outcome is recorded, its queue and the jobs kept."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, list[Job]]] = []


_keeping = _Keeping()


def stop() -> None:
    """The worker is stopping: its pool slots run no further released job after the current one."""
    _stopping.value = 1


def stopping() -> bool:
    return bool(_stopping.value)


def publisher(publish: Publish) -> Publish:
    """The worker's publisher of released jobs: sends each message, or keeps the jobs of the queue being kept."""

    def send_or_keep(job: Job) -> None:
        if _keeping.stack and _keeping.stack[-1][0] == job.queue:
            _keeping.stack[-1][1].append(job)
        else:
            publish(job)

    return send_or_keep


@contextmanager
def keeping(queue: str, publish: Publish) -> Iterator[list[Job]]:
    """Around an outcome's record: the jobs it released on `queue`, all but the first published on leaving (the
    list then holds only that one, for the caller to claim next; none while the worker stops)."""
    kept: list[Job] = []
    _keeping.stack.append((queue, kept))
    try:
        yield kept
    except BaseException:
        send(kept, publish)
        raise
    finally:
        _keeping.stack.pop()
    send(kept[0 if stopping() else 1 :], publish)
    del kept[0 if stopping() else 1 :]


def send(kept: list[Job], publish: Publish) -> None:
    """The messages of kept jobs this process will not claim itself."""
    for job in kept:
        publish(job)
