"""Huey on SQLite: one task running the script.

Its consumer: `huey_consumer bench.peers.huey_app.huey -w 2 -k process` (bench/peers/huey_peer.py), with Huey's
default polling (it backs off while the queue is empty).
"""

from __future__ import annotations

import os

from huey import SqliteHuey

from bench.peers.job import run_noop

huey = SqliteHuey("peer", filename=os.environ.get("BENCH_PEER_HUEY_DB", "/tmp/bench-peer-huey.db"))


@huey.task()
def noop(python: str, script: str, log: str, submitted: float) -> None:
    run_noop(python, script, log, submitted)
