"""Plain Celery on Redis, as a user would write it: one task running the script, acks late, prefetch 1.

Its worker: `celery -A bench.peers.celery_app worker --pool prefork --concurrency 2` (bench/peers/celery_peer.py).
"""

from __future__ import annotations

import os

from celery import Celery

from bench.peers.job import run_noop

app = Celery("peer", broker=os.environ.get("BENCH_PEER_BROKER", "redis://127.0.0.1:6379/15"))
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(python: str, script: str, log: str, submitted: float) -> None:
    run_noop(python, script, log, submitted)
