"""The plain task queues a user might write instead of Robotni, draining the same no-op script job.

Each peer is a module here that starts the peer's own workers as its documentation says (`celery_peer.py`,
`rq_peer.py`, `huey_peer.py`), with the peer's app and task in a file its workers load (`celery_app.py`,
`rq_jobs.py`, `huey_app.py`). Every task does the same: `python -I noop.py` with the empty venv's interpreter
(`job.run_noop`), and appends when it was submitted, started and ended to a log file the benchmark reads.
The floor and the rounds are `bench/floor.py`'s, as for Robotni.
"""

from __future__ import annotations

import importlib
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench import floor
from bench.floor import Throughput

# name -> (module, class): imported only when measured, so a missing bench extra names the peer it stops.
PEERS = {
    "celery": ("bench.peers.celery_peer", "CeleryPeer"),
    "rq": ("bench.peers.rq_peer", "RqPeer"),
    "huey": ("bench.peers.huey_peer", "HueyPeer"),
}


@dataclass
class PeerResult:
    title: str
    throughput: Throughput | None = None
    latencies: list[float] = field(default_factory=list)  # ms, submit -> end
    spawns: list[float] = field(default_factory=list)  # ms, the single spawn before each
    note: str = ""

    def over_spawn(self) -> tuple[float, float] | None:
        """(p50, p99) of the latency minus the median spawn, ms."""
        if not self.latencies:
            return None
        from bench.api import percentile

        spawn = statistics.median(self.spawns)
        return percentile(self.latencies, 0.5) - spawn, percentile(self.latencies, 0.99) - spawn


def measure(name: str, base: Path, python: str, script: str, jobs: int, rounds: int, floor_runs: int, samples: int):
    """One peer: `rounds` drains of `jobs` between floors, then `samples` latencies; a failure becomes a note."""
    module, cls = PEERS[name]
    folder = base / name
    folder.mkdir()
    try:
        peer = getattr(importlib.import_module(module), cls)(folder, python, script)
    except Exception as exc:  # its package (the bench extra) or its server is missing here
        return PeerResult(name, note=f"{name} not measured: {exc.__class__.__name__}: {exc}")
    result = PeerResult(peer.title)
    try:
        result.throughput = floor.rounds(lambda: peer.drain(jobs), python, rounds, floor_runs)
        result.latencies, result.spawns = peer.latencies(samples)
    except Exception as exc:
        result.note = f"{peer.title}: stopped by {exc.__class__.__name__}: {exc}"
    finally:
        peer.stop()
        peer.close()
    return result
