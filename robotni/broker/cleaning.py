"""Keeps kombu's filesystem broker folder bounded.

kombu never removes a fanout binding: a stopped worker's pidbox queue, a stopped Flower's or `celery events`'
event queue stay bound, and every broadcast, event and worker heartbeat keeps writing a file for them. A queue
whose oldest message has waited past the stale age has no consumer; its binding and files are removed. Task
queues are never touched: their messages wait for a worker however long it takes. (Consumed messages in
`processed` are robotni.store.retention's business.)
"""

from __future__ import annotations

import contextlib
import json
import time
from fcntl import LOCK_EX
from pathlib import Path
from urllib.parse import unquote

from kombu.transport.filesystem import lock, unlock


def _older_than(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def stale_queues(queue_dir: Path, task_queues: set[str], cutoff: float) -> dict[str, Path]:
    """Non-task queues holding a message older than cutoff, with their folders: nobody reads them."""
    stale = {}
    for folder in queue_dir.iterdir():
        queue = unquote(folder.name)
        old = folder.is_dir() and any(_older_than(message, cutoff) for message in folder.glob("*.msg"))
        if old and queue not in task_queues:
            stale[queue] = folder
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


def _remove(folder: Path) -> int:
    """A stale queue's messages and folder (a late message makes the folder again: robotni/broker/fstransport.py)."""
    removed = 0
    for message in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):  # another worker's cleaner was first
            message.unlink()
            removed += 1
    with contextlib.suppress(OSError):  # a message landed meanwhile: the next cleaning removes it
        folder.rmdir()
    return removed


def clean(broker_dir: Path, task_queues: set[str], stale_seconds: float) -> dict[str, int]:
    cutoff = time.time() - stale_seconds
    queue_dir, control_dir = broker_dir / "queue", broker_dir / "control"
    dead = stale_queues(queue_dir, task_queues, cutoff)
    counts = {"bindings": unbind(control_dir, set(dead)) if dead else 0}
    counts["messages"] = sum(_remove(folder) for folder in dead.values())
    counts["folders"] = _remove_empty(queue_dir, task_queues, cutoff)
    return counts


def _remove_empty(queue_dir: Path, task_queues: set[str], cutoff: float) -> int:
    """Folders of non-task queues left empty since before cutoff: every `celery inspect` or Flower request has a
    reply queue of its own. A live consumer's folder comes back with its next message; until then it is polled."""
    removed = 0
    for folder in queue_dir.iterdir():
        if unquote(folder.name) not in task_queues and _older_than(folder, cutoff):
            with contextlib.suppress(OSError):  # not empty (a message landed), or removed by another cleaner
                folder.rmdir()
                removed += 1
    return removed
