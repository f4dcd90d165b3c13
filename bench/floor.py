"""The floor every throughput is held against, and a round around a drain: `bench/__main__.py` says why.

The floor is what a fresh interpreter costs here: SPAWNERS concurrent spawners of `python -I -c pass`, with the
interpreter the no-op jobs run with. A round is a floor, a drain, and a floor again; its ratio is the drain's
rate over the mean of the two floors, so a machine shared with other work moves both sides alike. Robotni's
rounds, the peers' and the user's view all go through `rounds()`.
"""

from __future__ import annotations

import statistics
import subprocess
import time
import venv
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

SPAWNERS = 2


def spawn_floor(python: str, runs: int, spawners: int = SPAWNERS) -> float:
    """Spawns/s of `python -I -c pass` from concurrent spawners."""
    started = time.perf_counter()
    with ThreadPoolExecutor(spawners) as pool:
        list(pool.map(lambda _: subprocess.run([python, "-I", "-c", "pass"], check=True), range(runs)))
    return runs / (time.perf_counter() - started)


def spawn_once(python: str) -> float:
    """ms of one `python -I -c pass`."""
    started = time.perf_counter()
    subprocess.run([python, "-I", "-c", "pass"], check=True)
    return (time.perf_counter() - started) * 1000


def empty_venv(folder: Path) -> str:
    """The interpreter of an empty venv (no pip), as Robotni's standard-library environment is: the peers' jobs
    run with it, so their spawns cost what Robotni's no-op jobs' do."""
    venv.create(folder, with_pip=False, symlinks=True)
    return str(folder / "bin" / "python")


@dataclass
class Throughput:
    rates: list[float] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)  # the mean of the floors around each round
    cpu_ms: list[dict[str, float]] = field(default_factory=list)  # per round: CPU ms per job by part

    def cpu_note(self, title: str) -> str:
        parts = {part: statistics.median(r[part] for r in self.cpu_ms) for part in self.cpu_ms[0]}
        machine = parts.pop("machine")
        split = ", ".join(f"{part} {ms:.1f}" for part, ms in parts.items() if ms >= 0.05)
        return (
            f"{title}: CPU per job (median of the rounds) {split} ms; the whole machine was busy "
            f"{machine:.1f} ms per job (the rest: the benchmark itself and whatever else ran meanwhile)"
        )

    @property
    def ratio(self) -> float:
        return statistics.median(r / f for r, f in zip(self.rates, self.floors, strict=True))

    def cell(self) -> str:
        rates = ", ".join(f"{r:.0f}" for r in self.rates)
        return f"**{self.ratio:.2f}x** the floor: {statistics.median(self.rates):.0f} jobs/s (rounds: {rates})"


def rounds(drain: Callable[[], float], python: str, count: int, floor_runs: int) -> Throughput:
    """`count` rounds of floor, drain (which returns jobs/s), floor."""
    measured = Throughput()
    for _ in range(count):
        before = spawn_floor(python, floor_runs)
        measured.rates.append(drain())
        after = spawn_floor(python, floor_runs)
        measured.floors.append((before + after) / 2)
    return measured
