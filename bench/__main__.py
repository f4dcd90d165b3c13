"""One benchmark run, printed as a markdown table: `python -m bench [--jobs N] [--quick]`.

Everything talks to processes on this machine only (loopback and a temporary data folder), and every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from tests.stack import Stack, wait_until

# Settings a benchmark run may vary from the environment; everything else stays at its default.
PASSED_THROUGH = ("ROBOTNI_POLL_INTERVAL", "ROBOTNI_PREFETCH_MULTIPLIER")
BENCH_WORKERS = Path(__file__).resolve().parent / "workers"


def spawn_floor(runs: int, spawners: int = 2) -> tuple[float, float]:
    """Raw `python -I -c pass` from concurrent spawners: (per second, median ms of one spawn)."""

    def one(_):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(spawners) as pool:
        durations = list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - started), statistics.median(durations) * 1000


def _rows(stack: Stack, sql: str) -> list[tuple]:
    with sqlite3.connect(stack.data_dir / "robotni.db", timeout=30) as db:
        return db.execute(sql).fetchall()


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def throughput(stack: Stack, jobs: int) -> float:
    """Jobs/s of a worker draining a queue filled beforehand (first start to last finish)."""
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: stack.submit("noop"), range(jobs)))
    stack.start_worker("bench", concurrency=2)
    wait_until(
        lambda: _rows(stack, "select count(*) from jobs where status='completed'")[0][0] >= jobs,
        300,
        "the queue to drain",
        every=0.2,
    )
    first, last = _rows(stack, "select min(started_at), max(finished_at) from jobs")[0]
    return jobs / (_ts(last) - _ts(first)).total_seconds()


def latency(stack: Stack, samples: int) -> list[float]:
    """Submit → completed in ms, from the job's own timestamps, one job at a time on an idle worker."""
    values = []
    for _ in range(samples):
        job_id = stack.submit("noop")["id"]
        wait_until(lambda job_id=job_id: stack.job(job_id)["status"] == "completed", 30, "a job", every=0.005)
        row = _rows(stack, f"select created_at, finished_at from jobs where id='{job_id}'")[0]
        values.append((_ts(row[1]) - _ts(row[0])).total_seconds() * 1000)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=600, help="jobs for the throughput run")
    parser.add_argument("--samples", type=int, default=40, help="jobs for the latency run")
    args = parser.parse_args()

    floor_rate, spawn_ms = spawn_floor(max(args.jobs // 2, 100))
    base = Path(tempfile.mkdtemp(prefix="robotni-bench-"))
    stack = Stack(base, {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
    shutil.copy(BENCH_WORKERS / "noop.py", stack.workers_dir / "noop.py")
    try:
        stack.start_web()
        rate = throughput(stack, args.jobs)
        lat = latency(stack, args.samples)
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)

    p50 = statistics.median(lat)
    p99 = statistics.quantiles(lat, n=100)[98]
    print(
        f"Machine: {platform.node()}, {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    print("| measure | value |\n|---|---|")
    print(f"| floor: `python -I -c pass`, 2 spawners | {floor_rate:.1f}/s (median spawn {spawn_ms:.1f} ms) |")
    print(
        f"| embedded (filesystem + SQLite), 2 pool processes, no-op jobs | {rate:.1f}/s "
        f"({rate / floor_rate:.0%} of the floor) |"
    )
    print(f"| submit → completed, median | {p50:.1f} ms |")
    print(f"| submit → completed, p99 | {p99:.1f} ms |")
    print(f"| submit → completed minus median spawn | {p50 - spawn_ms:.1f} ms |")


if __name__ == "__main__":
    main()
