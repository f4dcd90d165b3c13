"""Keeps kombu's filesystem broker folder bounded.

kombu never removes a fanout binding: a stopped worker's pidbox queue, a stopped Flower's or `celery events`'
event queue stay bound, and every broadcast, event and worker heartbeat keeps writing a file for them. A queue
whose oldest message has waited past the stale age has no consumer; its binding and files are removed. Task
queues are never touched: their messages wait for a worker however long it takes. (Consumed messages in
`processed` are robotni.store.retention's business.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from fcntl import LOCK_EX
from pathlib import Path

from kombu.transport.filesystem import lock, unlock

# Files written by kombu are named `<ms>_<uuid>.<queue>.msg`.
MESSAGE_SUFFIX = ".msg"


def _queue_of(filename: str) -> str | None:
    if filename.startswith(".") or not filename.endswith(MESSAGE_SUFFIX):
        return None  # a message still being written (robotni.broker.fstransport), or not a message
    return filename.partition(".")[2][: -len(MESSAGE_SUFFIX)]


def _older_than(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def stale_queues(queue_dir: Path, task_queues: set[str], cutoff: float) -> set[str]:
    """Non-task queues holding a message older than cutoff: nobody reads them."""
    stale = set()
    for entry in os.scandir(queue_dir):
        queue = _queue_of(entry.name)
        if queue and queue not in task_queues and queue not in stale and _older_than(Path(entry.path), cutoff):
            stale.add(queue)
    return stale


def unbind(control_dir: Path, queues: set[str]) -> int:
    """Remove bindings of these queues from every exchange table, under kombu's own file lock."""
    removed = 0
    for table in control_dir.glob("*.exchange"):
        with open(table, "rb+", buffering=0) as f:
            lock(f, LOCK_EX)
            try:
                bindings = json.loads(f.read() or b"[]")
                kept = [b for b in bindings if b[2] not in queues]
                if len(kept) != len(bindings):
                    f.seek(0)
                    f.write(json.dumps(kept).encode())
                    f.truncate()
                    removed += len(bindings) - len(kept)
            finally:
                unlock(f)
    return removed


def _remove(paths: Iterable[str]) -> int:
    removed = 0
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass  # another worker's cleaner, or the consumer, was first
    return removed


def clean(broker_dir: Path, task_queues: set[str], stale_seconds: float) -> dict[str, int]:
    cutoff = time.time() - stale_seconds
    queue_dir, control_dir = broker_dir / "queue", broker_dir / "control"
    dead = stale_queues(queue_dir, task_queues, cutoff)
    counts = {"bindings": unbind(control_dir, dead) if dead else 0}
    counts["messages"] = _remove(
        entry.path for entry in os.scandir(queue_dir) if dead and _queue_of(entry.name) in dead
    )
    return counts
