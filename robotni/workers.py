"""Workers announce themselves in the job store, so /status sees them on every broker."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from sqlalchemy import delete, select, update

from robotni.db import WorkerBeat, engine, utcnow
from robotni.jobs import running_on

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


class Heartbeat(threading.Thread):
    """Beats from the worker's main process until stopped; a failed beat is logged and retried."""

    def __init__(self, name: str, queues: list[str], concurrency: int, every: float):
        super().__init__(name="robotni-heartbeat", daemon=True)
        self.args = (name, queues, concurrency)
        self.every = every
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                beat(*self.args)
            except Exception:
                log.exception("worker heartbeat failed")
            if self.stopped.wait(self.every):
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        forget(self.args[0])
