"""What every peer does the same way: start its workers, drain a queue filled beforehand, time jobs one at a time."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.floor import spawn_once
from tests.stack import ROOT, Process, wait_until

DRAIN_TIMEOUT = 300
# A latency sample polls the log this often: the latency itself comes from the task's own clock.
POLL_SECONDS = 0.005


class Peer:
    """One peer's workers on a folder of their own; subclasses say how to start them and how to submit."""

    title = ""
    name = ""

    def __init__(self, base: Path, python: str, script: str):
        self.base, self.python, self.script = base, python, script
        self.log = base / f"{self.name}-jobs.log"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.processes: list[Process] = []
        self.starts = 0

    # --- what each peer says ---------------------------------------------------------------------------

    def worker_argvs(self) -> list[list[str]]:
        raise NotImplementedError

    def ready(self, log: str) -> bool:
        raise NotImplementedError

    def submit(self, count: int) -> None:
        """count jobs, each stamped with its own submit time."""
        raise NotImplementedError

    def close(self) -> None:
        """Remove what the peer stored (its broker's db, its queue file)."""

    # --- the same for all ------------------------------------------------------------------------------

    def task_args(self) -> tuple[str, str, str, float]:
        return self.python, self.script, str(self.log), time.time()

    def start(self) -> None:
        self.starts += 1
        for number, argv in enumerate(self.worker_argvs()):
            log = self.base / f"{self.name}-{self.starts}-{number}.log"
            self.processes.append(Process(f"{self.name}-{number}", argv, self.env, log))
        for proc in self.processes:
            wait_until(lambda p=proc: self.ready(p.log()), 60, f"{proc.name} ready\n{proc.log()}", every=0.1)

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop(timeout=10)

    def lines(self) -> list[tuple[float, float, float]]:
        if not self.log.exists():
            return []
        return [tuple(map(float, line.split())) for line in self.log.read_text().splitlines()]  # type: ignore[misc]

    def drain(self, jobs: int) -> float:
        """Jobs/s of the workers draining `jobs` jobs queued before they started: first start to last end."""
        self.log.unlink(missing_ok=True)
        self.submit(jobs)
        self.start()
        try:
            rows = wait_until(lambda: len(r := self.lines()) >= jobs and r, DRAIN_TIMEOUT, f"{self.title}: {jobs} jobs")
        finally:
            self.stop()
        return jobs / (max(row[2] for row in rows) - min(row[1] for row in rows))

    def latencies(self, samples: int) -> tuple[list[float], list[float]]:
        """(submit -> end of each job, one at a time on idle workers; a single spawn before each), in ms."""
        self.log.unlink(missing_ok=True)
        self.start()
        latencies, spawns = [], []
        try:
            for number in range(3 + samples):  # 3 to warm: the first jobs load what the workers load lazily
                spawn = spawn_once(self.python)
                self.submit(1)
                row = wait_until(
                    lambda n=number: len(r := self.lines()) > n and r[n],
                    30,
                    f"{self.title}: job {number}",
                    every=POLL_SECONDS,
                )
                if number >= 3:
                    spawns.append(spawn)
                    latencies.append((row[2] - row[0]) * 1000)
        finally:
            self.stop()
        return latencies, spawns
