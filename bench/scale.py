"""The scale check: jobs/s with 1, 2 and 4 worker processes (each with 2 pool slots) against one Redis and
one PostgreSQL, with the SQL statements each job cost (bench/counted.py) and the CPU of each part.

Unlike the drains of one worker, the workers start first (all of them ready) and the jobs are then submitted at
once through the API (h2load, faster than the workers drain): started one after the other, the first worker
would drain alone for seconds. The rate runs from the first job's start to the last one's end, as elsewhere.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

from bench import counted, floor
from bench.cpu import worker_cpu
from bench.floor import Throughput
from robotni.store.models import Job
from tests.stack import Process, wait_until

POOL_PROCESSES = 2
MACHINE_WIDE = ("PostgreSQL and Redis (all their clients)", "machine")
JOB_PARTS = ("worker process", "pool processes", "job processes", MACHINE_WIDE[0])


@dataclass
class Scale:
    workers: int
    throughput: Throughput = field(default_factory=Throughput)
    statements: list[float] = field(default_factory=list)  # per round: SQL statements per job, every process


def _start(bench: Any, name: str, statements_dir: str) -> Process:
    argv = [sys.executable, "-m", "bench.counted", "worker", "-Q", "default", "-n", f"{name}@%h"]
    argv += ["--concurrency", str(POOL_PROCESSES), "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    return bench.stack.spawn(f"worker-{name}", argv, {"BENCH_STATEMENTS_DIR": statements_dir})


def measure(bench: Any, workers: int, jobs: int, count: int, floor_runs: int) -> Scale:
    """`count` rounds of `workers` worker processes between floors."""
    scale = Scale(workers)
    cpu: list[dict[str, float]] = []
    scale.throughput = floor.rounds(
        lambda: _drain(bench, workers, jobs, scale, cpu), bench.job_python(), count, floor_runs
    )
    scale.throughput.cpu_ms = cpu
    return scale


def _drain(bench: Any, workers: int, jobs: int, scale: Scale, cpu_ms: list[dict[str, float]]) -> float:
    """One round: `workers` worker processes drain `jobs` no-op jobs; the rate, with statements and CPU kept."""
    bench.workers += 1
    prefix = f"s{bench.workers}"
    folder = bench.base / f"{prefix}-statements"
    folder.mkdir()
    procs = [_start(bench, f"{prefix}-{n}", str(folder)) for n in range(workers)]
    for proc in procs:
        wait_until(lambda p=proc: " ready." in p.log(), 120, f"{proc.name} ready\n{proc.log()}", every=0.1)
    before = [worker_cpu(proc.pid) for proc in procs]
    counted_before = counted.total(folder)
    bench.post(jobs, "noop")
    done = [Job.status == "completed", Job.worker.like(f"{prefix}-%")]
    wait_until(lambda: bench.count(*done) >= jobs, 300, f"{jobs} jobs on {workers} workers", every=0.1)
    after = [worker_cpu(proc.pid) for proc in procs]
    scale.statements.append((counted.total(folder) - counted_before) / jobs)
    for proc in procs:
        proc.stop()
    shutil.rmtree(folder, ignore_errors=True)
    cpu = {part: sum(a[part] - b[part] for a, b in zip(after, before, strict=True)) for part in after[0]}
    for part in MACHINE_WIDE:  # summed once per worker above
        cpu[part] = after[0][part] - before[0][part]
    cpu_ms.append({part: seconds * 1000 / jobs for part, seconds in cpu.items()})
    return bench.rate(*done)


def rows(scales: dict[int, Scale]) -> list[str]:
    lines = [
        "| worker processes (2 pool slots each) | no-op jobs/s | SQL statements per job | CPU ms per job "
        "(Robotni + job + PostgreSQL and Redis) |",
        "|---|---|---|---|",
    ]
    for workers, scale in scales.items():
        statements = ", ".join(f"{n:.1f}" for n in scale.statements)
        lines.append(f"| {workers} | {scale.throughput.cell()} | {statements} | {cpu_per_job(scale):.1f} |")
    return lines


def cpu_per_job(scale: Scale) -> float:
    """CPU ms a job cost Robotni, its process and the two servers (median of the rounds)."""
    return statistics.median(sum(r[part] for part in JOB_PARTS) for r in scale.throughput.cpu_ms)


def host_estimate(scales: dict[int, Scale], cores: int = 16) -> str:
    """What a host of `cores` cores would do if CPU were all a job needs, from the CPU per job measured here."""
    least = min(cpu_per_job(scale) for scale in scales.values())
    return (
        f"a {cores}-core host: about {cores * 1000 / least:,.0f} no-op jobs/s if CPU were the only limit "
        f"({least:.1f} ms of CPU a job here, Robotni's processes, the job's interpreter, PostgreSQL and Redis)"
    )
