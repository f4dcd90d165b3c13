"""Worker heartbeat rows: workers announce themselves in the job store, so /status sees them on every broker."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from robotni.store.engine import engine
from robotni.store.models import WorkerBeat, utcnow
from robotni.store.queries import running_on

# A worker is alive while its last beat is younger than this many beats.
ALIVE_BEATS = 3


def beat(name: str, queues: list[str], concurrency: int) -> None:
    now = utcnow()
    with engine().begin() as conn:
        found = conn.execute(update(WorkerBeat).where(WorkerBeat.name == name).values(last_seen=now)).rowcount
        if not found:
            conn.execute(
                insert(WorkerBeat).values(
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


def alive(beat_seconds: float) -> list[dict[str, Any]]:
    since = utcnow() - timedelta(seconds=ALIVE_BEATS * beat_seconds)
    with engine().connect() as conn:
        rows = conn.execute(select(WorkerBeat).where(WorkerBeat.last_seen >= since).order_by(WorkerBeat.name))
        workers = [dict(row._mapping) for row in rows]
    for worker in workers:
        worker["running"] = running_on(worker["name"])
    return workers


def live_queues(beat_seconds: float) -> set[str]:
    """Queues that at least one live worker consumes."""
    since = utcnow() - timedelta(seconds=ALIVE_BEATS * beat_seconds)
    with engine().connect() as conn:
        rows = conn.execute(select(WorkerBeat.queues).where(WorkerBeat.last_seen >= since))
        return {queue for (queues,) in rows for queue in queues}


def free_queues(beat_seconds: float) -> list[str]:
    """Queues that some live worker could take a job from right now."""
    return sorted({q for w in alive(beat_seconds) if len(w["running"]) < w["concurrency"] for q in w["queues"]})
