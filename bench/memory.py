"""Memory of the default stack: PSS of every process `robotni start` runs (what `make start` runs), idle and
after --memory-jobs no-op jobs.

A project made by `robotni init` in a temporary folder (with the no-op type added), started as `make start`
starts it, with the API and Flower on free loopback ports. PSS (proportional set size, from
/proc/<pid>/smaps_rollup) splits each page shared between processes among them, so the processes' PSS adds
up to what the stack really holds. Measured after --memory-settle seconds idle; then the jobs are POSTed
(h2load, or Python requests) while the worker runs them, and the stack is measured again once they completed and
it settled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select

from robotni.store.models import Job
from tests.stack import Process, free_port, wait_until

KIB_PER_MIB = 1024
WARM_SHARE = 10  # the middle snapshot comes after this share of the jobs (1/10)
GOAL_MIB, GROWTH_GOAL = 250.0, 0.10  # issue 19: PSS of the default stack idle, and its growth over the jobs
# The role of a process, by the command of the first process of its line that says it (the rest is honcho).
ROLES = {
    "gunicorn": "web (gunicorn master + workers)",
    "-Q webhooks": "webhooks worker (threads)",
    "worker": "worker (its process, with its pool)",
    "beat": "beat",
    "flower": "Flower",
}
HONCHO = "robotni start (honcho)"


@dataclass
class Snapshot:
    mib: dict[str, float] = field(default_factory=dict)  # role -> PSS MiB
    processes: dict[str, int] = field(default_factory=dict)  # role -> how many

    @property
    def total(self) -> float:
        return sum(self.mib.values())

    @property
    def count(self) -> int:
        return sum(self.processes.values())


@dataclass
class Memory:
    idle: Snapshot
    warm: Snapshot | None = None  # after the first tenth of the jobs: the processes' one-time warm-up is done
    after: Snapshot | None = None
    jobs: int = 0
    seconds: float = 0.0  # how long the jobs took, POSTs included


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _tree(pid: int) -> list[int]:
    return [pid, *(p for child in _children(pid) for p in _tree(child))]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError(f"no Pss in /proc/{pid}/smaps_rollup")


def snapshot(root: int) -> Snapshot:
    """PSS by role of `robotni start` (root) and everything under it."""
    taken = Snapshot()

    def add(role: str, pid: int) -> None:
        taken.mib[role] = taken.mib.get(role, 0.0) + pss_kib(pid) / KIB_PER_MIB
        taken.processes[role] = taken.processes.get(role, 0) + 1

    add(HONCHO, root)
    for child in _children(root):
        line = _tree(child)
        if _cmdline(child) == _cmdline(root):  # a copy of honcho's that reads a line's output (before issue 19)
            add(HONCHO, line.pop(0))
        commands = " ".join(_cmdline(pid) for pid in line)
        role = next(title for key, title in ROLES.items() if key in commands)
        for pid in line:
            add(role, pid)
    return taken


class DefaultStack:
    """`robotni start` in a fresh project folder."""

    def __init__(self, base: Path, noop: Path, pool: str):
        self.project = base / "project"
        subprocess.run([*_robotni(), "init", str(self.project)], check=True, capture_output=True, cwd=base)
        shutil.copy(noop, self.project / "workers" / noop.name)
        self.api = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTNI_")}
        path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # as the Makefile's `start` target
        env.update(ROBOTNI_BIND=self.api, ROBOTNI_FLOWER_BIND=f"127.0.0.1:{free_port()}", PATH=path)
        env.update(ROBOTNI_LOG_FORMAT="text", ROBOTNI_WORKER_POOL=pool)
        self.flower = env["ROBOTNI_FLOWER_BIND"]
        self.process = Process("robotni-start", [*_robotni(), "start"], env, base / "start.log", cwd=self.project)
        wait_until(self._ready, 120, f"robotni start\n{self.process.log()[-3000:]}", every=0.5)
        self.db = create_engine(f"sqlite:///{self.project / 'var' / 'robotni.db'}")

    def _ready(self) -> bool:
        log = self.process.log()
        if log.count(" ready.") < 2 or "beat: Starting..." not in log:  # the default and webhooks workers
            return False
        try:
            return all(requests.get(f"http://{host}/", timeout=5).status_code < 500 for host in (self.api, self.flower))
        except requests.RequestException:  # not listening yet
            return False

    def completed(self) -> int:
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(Job).where(Job.status == "completed")).scalar_one()

    def stop(self) -> None:
        self.process.stop(timeout=15)  # honcho gives its processes 5 s, then kills them
        self.db.dispose()


def _robotni() -> list[str]:
    return [sys.executable, "-c", "from robotni.cli import main; main()"]


def measure(base: Path, noop: Path, jobs: int, settle: float, post, pool: str = "threads") -> Memory:
    """Idle, then after `jobs` no-op jobs; `post(url, count)` submits them; the job workers' pool is `pool`."""
    stack = DefaultStack(base, noop, pool)
    try:
        time.sleep(settle)
        measured = Memory(idle=snapshot(stack.process.pid), jobs=jobs)
        if jobs:
            measured.warm = _run(stack, post, jobs // WARM_SHARE, settle, measured)
            measured.after = _run(stack, post, jobs, settle, measured)
        return measured
    finally:
        stack.stop()


def _run(
    stack: DefaultStack, post: Callable[[str, int], object], upto: int, settle: float, measured: Memory
) -> Snapshot:
    """POST jobs until `upto` were submitted in all, wait for them to complete, settle, and take a snapshot."""
    started, done = time.monotonic(), stack.completed()
    post(f"http://{stack.api}/api/worker/jobs", upto - done)
    wait_until(lambda: stack.completed() >= upto, 30 + upto - done, f"{upto} jobs to complete", every=1)
    measured.seconds += time.monotonic() - started
    time.sleep(settle)
    return snapshot(stack.process.pid)


def rows(measured: Memory, goal_mib: float = GOAL_MIB, growth_goal: float = GROWTH_GOAL) -> list[str]:
    """The memory table: one row per role, idle and after the jobs."""
    warm, after = measured.warm, measured.after
    lines = [
        f"| process (PSS, MiB; processes) | idle | after {measured.jobs // WARM_SHARE:,} no-op jobs | "
        f"after {measured.jobs:,} |",
        "|---|---|---|---|",
    ]
    for role, mib in measured.idle.mib.items():
        later = [f"{s.mib.get(role, 0):.1f} ({s.processes.get(role, 0)})" if s else "—" for s in (warm, after)]
        lines.append(f"| {role} | {mib:.1f} ({measured.idle.processes[role]}) | {' | '.join(later)} |")
    idle = measured.idle.total
    total = f"| **all {measured.idle.count} processes** | **{idle:.1f}**; goal ≤ {goal_mib:g}: "
    total += "met" if idle <= goal_mib else f"**not met** (+{idle - goal_mib:.0f} MiB)"
    if warm and after:
        growth = after.total / idle - 1
        total += (
            f" | {warm.total:.1f} ({warm.total / idle - 1:+.1%}) | **{after.total:.1f}** ({growth:+.1%} over idle, "
        )
        total += f"{after.total / warm.total - 1:+.1%} over the warm stack; goal ≤ +{growth_goal:.0%}: "
        total += ("met" if growth <= growth_goal else "**not met**") + f"; the jobs took {measured.seconds:.0f} s) |"
    else:
        total += " | — | — |"
    return [*lines, total]


def main() -> None:
    """`python -m bench.memory [jobs] [settle]`: this measure alone, printed."""
    import tempfile

    from bench.post import post_jobs

    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    settle = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    base = Path(tempfile.mkdtemp(prefix="robotni-bench-memory-"))
    try:
        post = partial(post_jobs, wtype="noop", workdir=base)
        measured = measure(base, Path(__file__).resolve().parent / "workers" / "noop.py", jobs, settle, post)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\n".join(rows(measured)))


if __name__ == "__main__":
    main()
