"""Workers announce themselves in the job store, so /status sees them on every broker."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import delete, select, update

from robotni.store.models import WorkerBeat, engine, utcnow
from robotni.store.queries import running_on

log = logging.getLogger(__name__)
# A worker is alive while its last beat is younger than this many beats.
ALIVE_BEATS = 3


def beat(name: str, queues: list[str], concurrency: int) -> None:
    now = utcnow()
    with engine().begin() as conn:
        found = conn.execute(update(WorkerBeat).where(WorkerBeat.name == name).values(last_seen=now)).rowcount
        if not found:
            conn.execute(
                WorkerBeat.__table__.insert().values(
                    name=name,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    queues=queues,
                    concurrency=concurrency,
                    started_at=now,
                    last_seen=now,
                )
            )


def forget(name: str) -> None:
    with engine().begin() as conn:
        conn.execute(delete(WorkerBeat).where(WorkerBeat.name == name))


def alive(beat_seconds: float) -> list[dict]:
    since = utcnow() - timedelta(seconds=ALIVE_BEATS * beat_seconds)
    with engine().connect() as conn:
        rows = conn.execute(select(WorkerBeat).where(WorkerBeat.last_seen >= since).order_by(WorkerBeat.name))
        workers = [dict(row._mapping) for row in rows]
    for worker in workers:
        worker["running"] = running_on(worker["name"])
    return workers


def free_queues(beat_seconds: float) -> list[str]:
    """Queues that some live worker could take a job from right now."""
    return sorted({q for w in alive(beat_seconds) if len(w["running"]) < w["concurrency"] for q in w["queues"]})


class Heartbeat(threading.Thread):
    """Beats from the worker's main process until stopped, running `chores` each `chores_every` seconds."""

    def __init__(self, name: str, queues: list[str], concurrency: int, every: float, chores, chores_every: float):
        super().__init__(name="robotni-heartbeat", daemon=True)
        self.args = (name, queues, concurrency)
        self.every, self.chores, self.chores_every = every, chores, chores_every
        self.stopped = threading.Event()

    def run(self) -> None:
        last_chores = 0.0
        while True:
            try:
                beat(*self.args)
                if time.monotonic() - last_chores >= self.chores_every:
                    last_chores = time.monotonic()
                    self.chores()
            except Exception:  # the store may be down for a moment; the next beat tries again
                log.exception("worker heartbeat failed")
            if self.stopped.wait(self.every):
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        forget(self.args[0])
